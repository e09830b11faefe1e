//! `GET /report` (the HTML page) and `GET /api/v1/report` (the JSON object of `report
//! --output json`), and the event counters on `/metrics`: the same store and the same
//! code as `gitops-render report`, so the page and the command cannot disagree.
//!
//! The drivers are synchronous; each request reads the store on a blocking thread.
//! Query parameters are the command's flags: `since`, `until`, `team`, `app`, `env`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::App;
use crate::events::report::{self, parse_time};
use crate::events::{self, html, Event, Kind, Outcome, Store};

#[derive(Debug, Default, serde::Deserialize)]
pub struct Params {
    since: Option<String>,
    until: Option<String>,
    team: Option<String>,
    app: Option<String>,
    env: Option<String>,
}

enum Answer {
    Html,
    Json,
}

pub async fn page(State(app): State<Arc<App>>, Query(p): Query<Params>) -> Response {
    answer(app, p, Answer::Html).await
}

pub async fn api(State(app): State<Arc<App>>, Query(p): Query<Params>) -> Response {
    answer(app, p, Answer::Json).await
}

async fn answer(app: Arc<App>, p: Params, how: Answer) -> Response {
    let Some(database) = app.events.clone() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no event store configured\n",
        )
            .into_response();
    };
    let until = match p.until.as_deref().map(parse_time).transpose() {
        Ok(u) => u.unwrap_or_else(|| jiff::Timestamp::now().as_millisecond()),
        Err(e) => return (StatusCode::BAD_REQUEST, format!("until: {e}\n")).into_response(),
    };
    let since = match p.since.as_deref().map(parse_time).transpose() {
        Ok(s) => s.unwrap_or(until - 30 * 86_400_000),
        Err(e) => return (StatusCode::BAD_REQUEST, format!("since: {e}\n")).into_response(),
    };
    if since >= until {
        return (StatusCode::BAD_REQUEST, "since is not before until\n").into_response();
    }
    let query = report::Query {
        since,
        until,
        deploy_envs: match &p.env {
            Some(e) => vec![e.clone()],
            None => app.platform.production_environments(),
        },
        team: p.team,
        app: p.app,
        env: p.env,
    };
    let built = tokio::task::spawn_blocking(move || {
        let mut store = Store::open(&database)?;
        report::build(&mut store, &query)
    })
    .await;
    let built = match built {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::warn!(error = %e.message, "report: the event store failed");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the event store is unavailable\n",
            )
                .into_response();
        }
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    match how {
        Answer::Html => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html::render(&built),
        )
            .into_response(),
        Answer::Json => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string_pretty(&built.to_json()).unwrap_or_default(),
        )
            .into_response(),
    }
}

/// The event counters for `/metrics`: deploys, rollbacks and rejections by team,
/// environment and outcome, counted in the shared store (so every replica reports the
/// same totals, including deploys made by pipelines). Teams outside the platform's
/// registry and unknown environments count as `other`: a hand-pushed commit cannot grow
/// the label space. Empty when there is no store or it does not answer.
pub async fn metrics_text(app: &Arc<App>) -> String {
    let Some(database) = app.events.clone() else {
        return String::new();
    };
    let teams: BTreeSet<String> =
        crate::platform::read_yaml(&app.platform.files, "policies/teams.yaml")
            .ok()
            .and_then(|v| v.as_object().map(|o| o.keys().cloned().collect()))
            .unwrap_or_default();
    let envs: BTreeSet<String> = app.platform.settings.environments.iter().cloned().collect();
    let counts = tokio::task::spawn_blocking(move || {
        Store::open(&database)?.counts(&[
            Kind::Deploy,
            Kind::Promote,
            Kind::Rollback,
            Kind::Rejected,
        ])
    })
    .await;
    let Ok(Ok(counts)) = counts else {
        return String::new();
    };
    let mut families: BTreeMap<&str, BTreeMap<(String, String, &str), i64>> = BTreeMap::new();
    for (kind, team, env, outcome, n) in counts {
        let family = match kind {
            Kind::Deploy | Kind::Promote => "gitops_render_deploys_total",
            Kind::Rollback => "gitops_render_rollbacks_total",
            _ => "gitops_render_rejections_total",
        };
        let bound = |v: Option<String>, known: &BTreeSet<String>| match v {
            Some(v) if known.contains(&v) => v,
            _ => "other".to_string(),
        };
        *families
            .entry(family)
            .or_default()
            .entry((bound(team, &teams), bound(env, &envs), outcome.as_str()))
            .or_default() += n;
    }
    let mut out = String::new();
    for (family, help) in [
        (
            "gitops_render_deploys_total",
            "Deploys and promotes landed, from the event store.",
        ),
        (
            "gitops_render_rollbacks_total",
            "Rollbacks landed, from the event store.",
        ),
        (
            "gitops_render_rejections_total",
            "Deploys rejected by a policy, a schema or a hold, from the event store.",
        ),
    ] {
        out.push_str(&format!(
            "# HELP {family} {help}\n# TYPE {family} counter\n"
        ));
        for ((team, env, outcome), n) in families.get(family).into_iter().flatten() {
            out.push_str(&format!(
                "{family}{{team=\"{}\",env=\"{}\",outcome=\"{outcome}\"}} {n}\n",
                label(team),
                label(env)
            ));
        }
    }
    out
}

/// Records a finished pull-request check (`success` or `failure`; a check that could not
/// report leaves no event). Never fails the check: see `events::record`.
pub async fn record_check(
    app: &Arc<App>,
    target: &super::webhook::Target,
    conclusion: crate::server::github::Conclusion,
    took: std::time::Duration,
) {
    use crate::server::github::Conclusion;
    let outcome = match conclusion {
        Conclusion::Success => Outcome::Success,
        Conclusion::Failure => Outcome::Failure,
        _ => return,
    };
    let Some(database) = app.events.clone() else {
        return;
    };
    let mut e = Event::now(app.clock, Kind::Check, outcome);
    e.source_repo = Some(target.repo.full_name().to_string());
    e.source_commit = Some(target.head_sha.clone());
    e.set_took(took);
    let recorder = events::Recorder {
        database,
        from_flag: false,
        clock: app.clock,
    };
    let _ = tokio::task::spawn_blocking(move || events::record(&recorder, &[e], None)).await;
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
