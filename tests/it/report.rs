//! `report`: a generated history with fixed times whose four keys and bands are worked
//! out by hand below, equal to `report --output json` on SQLite and on a real
//! PostgreSQL, and again after `events import` from the repository alone; the HTML
//! page parsed as HTML, its charts counted, and loaded in headless Chromium.

use crate::common::github;
use crate::common::gitops;
use crate::common::postgres as postgres_server;

use std::path::{Path, PathBuf};

use gitops::{example, Run, Sandbox};
use postgres_server::Postgres;
use serde_json::{json, Value};

const SINCE: &str = "2026-11-01T00:00:00Z";
const UNTIL: &str = "2026-11-29T00:00:00Z";

/// Epoch seconds of an RFC 3339 time, as git's `GIT_COMMITTER_DATE` takes them.
fn git_date(t: &str) -> String {
    let ts: jiff::Timestamp = t.parse().unwrap();
    format!("{} +0000", ts.as_second())
}

struct Scenario<'a> {
    sb: &'a Sandbox,
    repo: PathBuf,
    database: String,
}

impl Scenario<'_> {
    fn at(&self, time: &str, args: &[&str]) -> Run {
        let mut cmd = self.sb.cmd(args);
        cmd.env("GIT_COMMITTER_DATE", git_date(time))
            .env("GIT_AUTHOR_DATE", git_date(time))
            .env("GITOPS_RENDER_DATABASE_URL", &self.database);
        Run::from(cmd.output().unwrap())
    }

    fn deploy(
        &self,
        time: &str,
        values: &str,
        env: &str,
        tag: &str,
        source_time: &str,
        extra: &[&str],
    ) -> Run {
        let repo = self.repo.to_str().unwrap();
        let mut args = vec![
            "deploy",
            values,
            "--env",
            env,
            "--repo",
            repo,
            "--tag",
            tag,
            "--source-repo",
            "acme/payments-api",
            "--source-sha",
            "4f2a9c1",
            "--source-time",
            source_time,
            "--actor",
            "ci@payments",
        ];
        args.extend_from_slice(extra);
        self.at(time, &args)
    }
}

/// The history: times and answers are in the test's doc table (see `expected_group`).
fn play(sb: &Sandbox, repo: &Path, database: &str) {
    let s = Scenario {
        sb,
        repo: repo.to_path_buf(),
        database: database.to_string(),
    };
    let api = example("payments-api.yaml");
    let worker = example("ledger-worker.yaml");
    let r = repo.to_str().unwrap();
    // The window before: one deploy, lead time 2 h.
    s.deploy(
        "2026-10-20T12:00:00Z",
        &api,
        "prod",
        "1.0.0",
        "2026-10-20T10:00:00Z",
        &[],
    )
    .ok();
    // D1: lead 2 h.
    s.deploy(
        "2026-11-02T10:00:00Z",
        &api,
        "prod",
        "1.1.0",
        "2026-11-02T08:00:00Z",
        &[],
    )
    .ok();
    // D2: lead 24 h; fails: rolled back 30 min later.
    s.deploy(
        "2026-11-05T10:00:00Z",
        &api,
        "prod",
        "1.2.0",
        "2026-11-04T10:00:00Z",
        &[],
    )
    .ok();
    s.at(
        "2026-11-05T10:30:00Z",
        &[
            "rollback",
            "--repo",
            r,
            "--app",
            "payments-api",
            "--env",
            "prod",
            "--actor",
            "oncall@payments",
        ],
    )
    .ok();
    // D3: the fix of the rollback, releasing its hold; lead 1 h.
    s.deploy(
        "2026-11-08T09:00:00Z",
        &api,
        "prod",
        "1.2.1",
        "2026-11-08T08:00:00Z",
        &["--release-hold", "--fix"],
    )
    .ok();
    // A worker in staging rolled back: its hold stays open.
    s.at(
        "2026-11-10T10:00:00Z",
        &[
            "deploy", &worker, "--env", "staging", "--repo", r, "--tag", "2.0.0",
        ],
    )
    .ok();
    s.at(
        "2026-11-11T10:00:00Z",
        &[
            "deploy", &worker, "--env", "staging", "--repo", r, "--tag", "2.1.0",
        ],
    )
    .ok();
    s.at(
        "2026-11-11T12:00:00Z",
        &[
            "rollback",
            "--repo",
            r,
            "--app",
            "ledger-worker",
            "--env",
            "staging",
            "--actor",
            "oncall@payments",
        ],
    )
    .ok();
    // D4: lead 4 h; fails: a fix lands 4 h later.
    s.deploy(
        "2026-11-12T10:00:00Z",
        &api,
        "prod",
        "1.3.0",
        "2026-11-12T06:00:00Z",
        &[],
    )
    .ok();
    // D5: the fix, lead 1 h.
    s.deploy(
        "2026-11-12T14:00:00Z",
        &api,
        "prod",
        "1.3.1",
        "2026-11-12T13:00:00Z",
        &["--fix"],
    )
    .ok();
    // Staging, then promoted: the promote carries staging's source time (lead 25 h).
    s.deploy(
        "2026-11-15T10:00:00Z",
        &api,
        "staging",
        "1.4.0",
        "2026-11-15T09:00:00Z",
        &[],
    )
    .ok();
    s.at(
        "2026-11-16T10:00:00Z",
        &[
            "promote",
            "--repo",
            r,
            "--app",
            "payments-api",
            "--from",
            "staging",
            "--to",
            "prod",
        ],
    )
    .ok();
    // D6: lead 30 min.
    s.deploy(
        "2026-11-20T10:00:00Z",
        &api,
        "prod",
        "1.5.0",
        "2026-11-20T09:30:00Z",
        &[],
    )
    .ok();
    // Two deploys from a repository that is not the team's: rejected by `source-repo`.
    for day in ["2026-11-21T10:00:00Z", "2026-11-22T10:00:00Z"] {
        s.at(
            day,
            &[
                "deploy",
                &api,
                "--env",
                "prod",
                "--repo",
                r,
                "--tag",
                "1.6.0",
                "--source-repo",
                "evil/payments-api",
            ],
        )
        .code(1);
    }
    s.at("2026-11-25T08:00:00Z", &["verify", "--repo", r]).ok();
}

/// Worked out by hand from `play`, window 2026-11-01 .. 2026-11-29 (28 days), prod:
///
/// | deployment | time        | lead time | next in prod        | failed, recovery |
/// | D1 deploy  | 11-02 10:00 | 7,200 s   | D2                  | no               |
/// | D2 deploy  | 11-05 10:00 | 86,400 s  | rollback 11-05 10:30| yes, 1,800 s     |
/// | D3 fix     | 11-08 09:00 | 3,600 s   | D4                  | no               |
/// | D4 deploy  | 11-12 10:00 | 14,400 s  | D5, marked fix      | yes, 14,400 s    |
/// | D5 fix     | 11-12 14:00 | 3,600 s   | promote             | no               |
/// | promote    | 11-16 10:00 | 90,000 s  | D6                  | no               |
/// | D6 deploy  | 11-20 10:00 | 1,800 s   | -                   | no               |
///
/// 7 deployments / 28 days = 0.25 per day: high (at least weekly, less than daily).
/// Lead times sorted: 1800 3600 3600 7200 14400 86400 90000: median 7,200 s (elite:
/// under a day), p90 the 7th of 7 (nearest rank, ceil(6.3)) = 90,000 s.
/// Failure rate 2/7 = 0.2857...: low (over 15%). Recovery median (1800+14400)/2 =
/// 8,100 s: high (under a day). Window before (10-04 .. 11-01): one deploy, lead
/// 7,200 s, no failure: frequency better, lead time same, failure rate worse,
/// recovery unknown then.
fn expected_group() -> Value {
    json!({
        "team": "payments",
        "deployments": 7,
        "failed_deployments": 2,
        "deploys_per_day": 0.25,
        "lead_time_seconds": {"median": 7200.0, "p90": 90000.0},
        "change_failure_rate": 2.0 / 7.0,
        "recovery_seconds": {"median": 8100.0},
        "bands": {"deployment_frequency": "high", "lead_time": "elite", "change_failure_rate": "low", "recovery_time": "high"},
        "trend": {"deployment_frequency": "better", "lead_time": "same", "change_failure_rate": "worse", "recovery_time": null},
        "previous": {
            "deployments": 1,
            "failed_deployments": 0,
            "deploys_per_day": 1.0 / 28.0,
            "lead_time_seconds": {"median": 7200.0, "p90": 7200.0},
            "change_failure_rate": 0.0,
            "recovery_seconds": {"median": null},
        },
    })
}

fn report(sb: &Sandbox, database: &str, format: &str) -> String {
    let mut cmd = sb.cmd(&[
        "report", "--since", SINCE, "--until", UNTIL, "--output", format,
    ]);
    cmd.env("GITOPS_RENDER_DATABASE_URL", database);
    Run::from(cmd.output().unwrap()).ok().stdout
}

fn report_json(sb: &Sandbox, database: &str) -> Value {
    serde_json::from_str(&report(sb, database, "json")).unwrap()
}

fn import(sb: &Sandbox, repo: &Path, database: &str) -> Run {
    let mut cmd = sb.cmd(&["events", "import", "--repo", repo.to_str().unwrap()]);
    cmd.env("GITOPS_RENDER_DATABASE_URL", database);
    Run::from(cmd.output().unwrap()).ok()
}

fn holds() -> Value {
    json!([{
        "team": "payments", "app": "ledger-worker", "env": "staging", "version": "2.0.0",
        "since": "2026-11-11T12:00:00Z", "actor": "oncall@payments",
    }])
}

/// The whole check on one backend: recorded, then imported into an empty store.
fn scenario_on(database: &str, empty_database: &str) {
    let sb = Sandbox::new();
    let repo = sb.bare("gitops.git");
    play(&sb, &repo, database);

    let got = report_json(&sb, database);
    assert_eq!(got["since"], SINCE);
    assert_eq!(got["until"], UNTIL);
    assert_eq!(got["groups"], json!([expected_group()]), "{got:#}");
    assert_eq!(
        got["rejections"],
        json!([{"rule": "source-repo", "count": 2}])
    );
    assert_eq!(got["drift"]["verify_runs"], 1);
    assert_eq!(got["drift"]["with_drift"], 0);
    assert_eq!(got["holds"], holds());

    // Every landed event was recorded, so importing adds nothing (no double count).
    let run = import(&sb, &repo, database);
    assert!(
        run.stdout.starts_with("imported 0 new event(s) of 14 "),
        "{}",
        run.stdout
    );
    assert_eq!(report_json(&sb, database)["groups"], got["groups"]);

    // The repository alone rebuilds the same keys: import into an empty store, twice.
    let run = import(&sb, &repo, empty_database);
    assert!(
        run.stdout.starts_with("imported 14 new event(s) of 14 "),
        "{}",
        run.stdout
    );
    let run = import(&sb, &repo, empty_database);
    assert!(
        run.stdout.starts_with("imported 0 new event(s) of 14 "),
        "{}",
        run.stdout
    );
    let rebuilt = report_json(&sb, empty_database);
    assert_eq!(rebuilt["groups"], json!([expected_group()]), "{rebuilt:#}");
    assert_eq!(rebuilt["holds"], holds());
    // What left no commit is only in the store that saw it.
    assert_eq!(rebuilt["rejections"], json!([]));
}

#[test]
fn the_four_keys_match_the_hand_computed_answers_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    scenario_on(
        dir.path().join("events.sqlite").to_str().unwrap(),
        &format!("sqlite://{}", dir.path().join("rebuilt.sqlite").display()),
    );
}

#[test]
fn the_four_keys_match_the_hand_computed_answers_on_postgresql() {
    let Some(pg) = Postgres::start() else { return };
    scenario_on(&pg.database("recorded"), &pg.database("rebuilt"));
}

/// The page's figures: bars and points in the chart color, per chart.
fn marks(doc: &scraper::Html, figure: &str, element: &str) -> usize {
    let sel = scraper::Selector::parse(&format!("figure#{figure} svg {element}")).unwrap();
    doc.select(&sel)
        .filter(|e| {
            e.value()
                .attr("fill")
                .is_some_and(|f| f.eq_ignore_ascii_case("#2B6CB0"))
        })
        .count()
}

#[test]
fn the_html_page_is_self_contained_with_the_charts_of_the_window() {
    let sb = Sandbox::new();
    let repo = sb.bare("gitops.git");
    let db = sb.path().join("events.sqlite");
    let db = db.to_str().unwrap();
    play(&sb, &repo, db);
    let html = report(&sb, db, "html");
    let doc = scraper::Html::parse_document(&html);
    assert!(doc.errors.is_empty(), "{:?}", doc.errors);
    // No scripts, and nothing fetched from anywhere.
    for sel in ["script", "link", "img", "iframe", "object"] {
        let s = scraper::Selector::parse(sel).unwrap();
        assert_eq!(doc.select(&s).count(), 0, "{sel}");
    }
    for m in html.match_indices("http") {
        let rest = &html[m.0..];
        assert!(
            rest.starts_with("http://www.w3.org/"),
            "external reference: {}",
            &rest[..40.min(rest.len())]
        );
    }
    // 4 weeks: deploys 2, 3, 2, 0 -> four bars; lead time and failure rate in the 3
    // weeks with deployments; recovery in the 2 weeks with a failure; one rule.
    assert_eq!(marks(&doc, "deploys-per-week", "rect"), 4);
    assert_eq!(marks(&doc, "lead-time", "circle"), 3);
    assert_eq!(marks(&doc, "failure-rate", "circle"), 3);
    assert_eq!(marks(&doc, "recovery-time", "circle"), 2);
    assert_eq!(marks(&doc, "top-rejections", "rect"), 1);
    let td = scraper::Selector::parse("table#keys tbody td").unwrap();
    let cells: Vec<String> = doc
        .select(&td)
        .map(|c| c.text().collect::<String>())
        .collect();
    assert_eq!(cells[0], "payments");
    assert_eq!(cells[1], "7");
    assert!(cells[3].starts_with("2h 0m / 1d 1h"), "{}", cells[3]);
    let holds = scraper::Selector::parse("table#holds tbody td").unwrap();
    assert_eq!(
        doc.select(&holds)
            .next()
            .unwrap()
            .text()
            .collect::<String>(),
        "ledger-worker / staging"
    );

    // A real browser: the page loads without console errors and draws.
    let Some(chromium) = which("chromium") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is needed with CI set"
        );
        eprintln!("skipped the browser half: no chromium");
        return;
    };
    let page = sb.path().join("report.html");
    std::fs::write(&page, &html).unwrap();
    let shot = sb.path().join("report.png");
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--hide-scrollbars",
            "--window-size=1200,2200",
        ])
        .arg(format!(
            "--user-data-dir={}",
            sb.path().join("chromium").display()
        ))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .env("HOME", sb.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    if let Some(keep) = std::env::var_os("GITOPS_RENDER_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_offers_the_same_report_and_counts_events_on_metrics() {
    let sb = Sandbox::new();
    let repo = sb.bare("gitops.git");
    let db = sb.path().join("events.sqlite");
    let db = db.to_str().unwrap().to_string();
    let (sb, db) = tokio::task::spawn_blocking(move || {
        play(&sb, &repo, &db);
        (sb, db)
    })
    .await
    .unwrap();
    let cli = report_json(&sb, &db);
    let fake = github::FakeGitHub::start().await;
    let server = github::Server::start(&fake.url, &["--database", &db]);
    let (status, body) = server
        .get(&format!("/api/v1/report?since={SINCE}&until={UNTIL}"))
        .await;
    assert_eq!(status, 200, "{body}");
    let api: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(api, cli);
    let (status, page) = server
        .get(&format!("/report?since={SINCE}&until={UNTIL}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(page, report(&sb, &db, "html"));
    let (status, _) = server.get("/api/v1/report?since=yesterday").await;
    assert_eq!(status, 400);
    // All time, per team, environment and outcome: 8 deploys and promotes in prod
    // (one before the window), 3 in staging; a rollback in each; 2 rejections in prod.
    let (_, metrics) = server.get("/metrics").await;
    for line in [
        r#"gitops_render_deploys_total{team="payments",env="prod",outcome="landed"} 8"#,
        r#"gitops_render_deploys_total{team="payments",env="staging",outcome="landed"} 3"#,
        r#"gitops_render_rollbacks_total{team="payments",env="prod",outcome="landed"} 1"#,
        r#"gitops_render_rollbacks_total{team="payments",env="staging",outcome="landed"} 1"#,
        r#"gitops_render_rejections_total{team="payments",env="prod",outcome="rejected"} 2"#,
    ] {
        assert!(metrics.contains(line), "{line} not in {metrics}");
    }
}
