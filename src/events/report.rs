//! The DORA report: the four keys over a window, per team, from the event store.
//!
//! Definitions (docs/events.md has the long form):
//! - a *deployment* is a landed `deploy`, `promote` or `rerender` (a change reaching an
//!   environment); a rollback is the remedy of a failed one, not a deployment;
//! - *deployment frequency*: deployments per day of the window;
//! - *lead time for changes*: from the source commit (`Gitops-Source-Time`) to the
//!   deployment, median and 90th percentile, over deployments that know it;
//! - *change failure rate*: the share of deployments followed, next in the same app and
//!   environment, by a rollback or by a deploy marked as a fix (`deploy --fix`);
//! - *failed-deployment recovery time*: from such a deployment to that rollback or fix,
//!   median.
//!
//! Bands are the 2023 Accelerate State of DevOps Report's (DORA) performance levels:
//! elite, high, medium, low (`Band::of_*` has the thresholds). The trend compares each
//! key with the window of the same length just before.
//!
//! One query reads the window and the one before it (an index on `time` bounds it);
//! holds come from the rollbacks and releases of all time (an index on `kind, time`).
//! Everything else is counted in memory, so both backends answer the same.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{json, Value};

use super::store::{Selection, Tally};
use super::{Event, Kind, Outcome, Store};
use crate::error::Result;

const DAY_MS: i64 = 86_400_000;
const WEEK_MS: i64 = 7 * DAY_MS;

/// Which events the report is about.
#[derive(Debug, Clone)]
pub struct Query {
    /// Milliseconds, `[since, until)`.
    pub since: i64,
    pub until: i64,
    pub team: Option<String>,
    pub app: Option<String>,
    /// `--env`, if given.
    pub env: Option<String>,
    /// The environments deployments count in: `--env`, else the platform's production
    /// environments.
    pub deploy_envs: Vec<String>,
}

impl Query {
    fn matches_scope(&self, e: &Event) -> bool {
        self.team
            .as_ref()
            .is_none_or(|t| e.team.as_ref() == Some(t))
            && self.app.as_ref().is_none_or(|a| e.app.as_ref() == Some(a))
            && self.env.as_ref().is_none_or(|v| e.env.as_ref() == Some(v))
    }

    fn counts_as_deploy_env(&self, e: &Event) -> bool {
        e.env
            .as_ref()
            .is_some_and(|v| self.deploy_envs.iter().any(|d| d == v))
    }
}

/// A performance level of the DORA research.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    Elite,
    High,
    Medium,
    Low,
}

impl Band {
    pub fn as_str(self) -> &'static str {
        match self {
            Band::Elite => "elite",
            Band::High => "high",
            Band::Medium => "medium",
            Band::Low => "low",
        }
    }

    /// On demand (at least daily) / daily to weekly / weekly to monthly / less.
    pub fn of_frequency(per_day: f64) -> Band {
        if per_day >= 1.0 {
            Band::Elite
        } else if per_day >= 1.0 / 7.0 {
            Band::High
        } else if per_day >= 1.0 / 30.0 {
            Band::Medium
        } else {
            Band::Low
        }
    }

    /// Under a day / a day to a week / a week to a month / more.
    pub fn of_lead_time(seconds: f64) -> Band {
        Self::of_duration(seconds, 86_400.0, 7.0 * 86_400.0, 30.0 * 86_400.0)
    }

    /// At most 5% / 10% / 15% / more.
    pub fn of_failure_rate(rate: f64) -> Band {
        if rate <= 0.05 {
            Band::Elite
        } else if rate <= 0.10 {
            Band::High
        } else if rate <= 0.15 {
            Band::Medium
        } else {
            Band::Low
        }
    }

    /// Under an hour / under a day / under a week / more.
    pub fn of_recovery(seconds: f64) -> Band {
        Self::of_duration(seconds, 3_600.0, 86_400.0, 7.0 * 86_400.0)
    }

    fn of_duration(s: f64, elite: f64, high: f64, medium: f64) -> Band {
        if s < elite {
            Band::Elite
        } else if s < high {
            Band::High
        } else if s < medium {
            Band::Medium
        } else {
            Band::Low
        }
    }
}

/// The four keys over one window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Keys {
    pub deployments: u64,
    pub failed: u64,
    pub deploys_per_day: f64,
    pub lead_median: Option<f64>,
    pub lead_p90: Option<f64>,
    pub failure_rate: Option<f64>,
    pub recovery_median: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub team: String,
    pub app: Option<String>,
    pub env: Option<String>,
    pub current: Keys,
    pub previous: Keys,
}

/// Per week of the window, for the charts: oldest first.
#[derive(Debug, Clone, Default)]
pub struct Week {
    pub start: i64,
    pub deployments: u64,
    pub failed: u64,
    pub lead_median: Option<f64>,
    pub recovery_median: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct HoldOpen {
    pub team: Option<String>,
    pub app: String,
    pub env: String,
    pub version: Option<String>,
    pub since: i64,
    pub actor: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub since: i64,
    pub until: i64,
    pub deploy_envs: Vec<String>,
    pub groups: Vec<Group>,
    /// Rule id -> rejected deploys it was a reason of, most first.
    pub rejections: Vec<(String, u64)>,
    pub verify_runs: u64,
    pub verify_with_drift: u64,
    pub drift_rules: Vec<(String, u64)>,
    pub checks: u64,
    pub checks_failed: u64,
    pub holds: Vec<HoldOpen>,
    pub weeks: Vec<Week>,
}

/// A deployment and what became of it.
struct Deployment {
    team: String,
    app: String,
    env: String,
    time: i64,
    lead: Option<f64>,
    /// Seconds to the rollback or fix that followed it, if it failed.
    recovered_after: Option<f64>,
}

/// Milliseconds since the epoch of an RFC 3339 time or a date at midnight UTC.
pub fn parse_time(s: &str) -> std::result::Result<i64, String> {
    let s = s.trim();
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Ok(ts.as_millisecond());
    }
    if let Ok(d) = s.parse::<jiff::civil::Date>() {
        if let Ok(z) = d.to_zoned(jiff::tz::TimeZone::UTC) {
            return Ok(z.timestamp().as_millisecond());
        }
    }
    Err(format!(
        "{s:?} is neither an RFC 3339 time (2026-11-29T10:02:11Z) nor a date (2026-11-29)"
    ))
}

pub fn build(store: &mut Store, q: &Query) -> Result<Report> {
    let len = (q.until - q.since).max(1);
    let scope = Selection {
        from: q.since - len,
        to: q.until,
        team: q.team.as_deref(),
        app: q.app.as_deref(),
        ..Selection::default()
    };
    // The database narrows each read to what the report uses: of a million events,
    // the deployments of the counted environments are a few thousand rows, and the rest
    // is counted where it lies.
    let landed = store.events(&Selection {
        kinds: &[Kind::Deploy, Kind::Promote, Kind::Rerender, Kind::Rollback],
        outcome: Some(Outcome::Landed),
        envs: Some(&q.deploy_envs),
        ..scope.clone()
    })?;
    let tallies = store.tally(&Selection {
        from: q.since,
        kinds: &[Kind::Rejected, Kind::Verify, Kind::Check],
        envs: q.env.as_ref().map(std::slice::from_ref),
        ..scope.clone()
    })?;
    let holds = store.latest_per_dir(&Selection {
        from: i64::MIN,
        kinds: &[Kind::Rollback, Kind::HoldRelease],
        outcome: Some(Outcome::Landed),
        envs: q.env.as_ref().map(std::slice::from_ref),
        // A hold belongs to the app's team at the time of the rollback; the team is
        // judged on the newest event below, as before.
        team: None,
        ..scope
    })?;
    Ok(compute(q, &landed, &tallies, &holds))
}

/// The report from the landed deployments and rollbacks (oldest first) of
/// `[since - len, until)`, the tallies of rejections, verify runs and checks of
/// `[since, until)`, and the newest rollback or hold release of each app and environment.
pub fn compute(q: &Query, events: &[Event], tallies: &[Tally], hold_events: &[Event]) -> Report {
    let len = (q.until - q.since).max(1);
    let from = q.since - len;
    let mut report = Report {
        since: q.since,
        until: q.until,
        deploy_envs: q.deploy_envs.clone(),
        ..Report::default()
    };

    // Deployments and their fate, per app and environment in time order.
    let mut by_dir: HashMap<(&str, &str), Vec<&Event>> = HashMap::new();
    for e in events {
        let landed = e.outcome == Outcome::Landed
            && (e.kind.is_deployment() || e.kind == Kind::Rollback)
            && e.time >= from;
        if landed && q.matches_scope(e) && q.counts_as_deploy_env(e) {
            if let (Some(app), Some(env)) = (&e.app, &e.env) {
                by_dir.entry((app, env)).or_default().push(e);
            }
        }
    }
    let mut deployments = Vec::new();
    for seq in by_dir.values() {
        for (i, e) in seq.iter().enumerate() {
            if !e.kind.is_deployment() {
                continue;
            }
            let recovered_after = seq.get(i + 1).and_then(|next| {
                let remedy = next.kind == Kind::Rollback
                    || (matches!(next.kind, Kind::Deploy | Kind::Promote) && next.fix);
                remedy.then(|| (next.time - e.time) as f64 / 1000.0)
            });
            deployments.push(Deployment {
                team: e.team.clone().unwrap_or_else(|| "unknown".into()),
                app: e.app.clone().unwrap_or_default(),
                env: e.env.clone().unwrap_or_default(),
                time: e.time,
                lead: e
                    .source_time
                    .filter(|s| *s <= e.time)
                    .map(|s| (e.time - s) as f64 / 1000.0),
                recovered_after,
            });
        }
    }
    deployments
        .sort_by(|a, b| (a.time, &a.team, &a.app, &a.env).cmp(&(b.time, &b.team, &b.app, &b.env)));

    // Groups: one per team, narrowed to the app and environment when asked for.
    let mut groups: BTreeMap<String, (Vec<&Deployment>, Vec<&Deployment>)> = BTreeMap::new();
    if let Some(t) = &q.team {
        groups.entry(t.clone()).or_default();
    }
    for d in &deployments {
        let slot = groups.entry(d.team.clone()).or_default();
        if d.time >= q.since {
            slot.0.push(d);
        } else {
            slot.1.push(d);
        }
    }
    report.groups = groups
        .into_iter()
        .map(|(team, (cur, prev))| Group {
            team,
            app: q.app.clone(),
            env: q.env.clone(),
            current: keys(&cur, len),
            previous: keys(&prev, len),
        })
        .collect();

    // Weeks of the window, for the charts.
    let mut start = q.since;
    while start < q.until {
        let end = (start + WEEK_MS).min(q.until);
        let in_week: Vec<&Deployment> = deployments
            .iter()
            .filter(|d| d.time >= start && d.time < end)
            .collect();
        let k = keys(&in_week, end - start);
        report.weeks.push(Week {
            start,
            deployments: k.deployments,
            failed: k.failed,
            lead_median: k.lead_median,
            recovery_median: k.recovery_median,
        });
        start = end;
    }

    // Rejections, verify runs and checks in the window, in scope (any environment
    // unless --env: policies bite before production too).
    let mut rejections: BTreeMap<String, u64> = BTreeMap::new();
    let mut drift_rules: BTreeMap<String, u64> = BTreeMap::new();
    for t in tallies {
        let mut rules = t.rules.clone();
        rules.sort();
        rules.dedup();
        match t.kind {
            Kind::Rejected => {
                for r in rules {
                    *rejections.entry(r).or_default() += t.events;
                }
            }
            Kind::Verify => {
                report.verify_runs += t.events;
                if t.outcome == Outcome::Drift {
                    report.verify_with_drift += t.events;
                    for r in rules {
                        *drift_rules.entry(r).or_default() += t.events;
                    }
                }
            }
            Kind::Check => {
                report.checks += t.events;
                if t.outcome == Outcome::Failure {
                    report.checks_failed += t.events;
                }
            }
            _ => {}
        }
    }
    report.rejections = most_first(rejections);
    report.drift_rules = most_first(drift_rules);

    // Holds open at `until`: the last of an app's rollbacks and releases is a rollback.
    let mut last: BTreeMap<(String, String), &Event> = BTreeMap::new();
    for e in hold_events.iter().filter(|e| e.outcome == Outcome::Landed) {
        if let (Some(app), Some(env)) = (&e.app, &e.env) {
            last.insert((app.clone(), env.clone()), e);
        }
    }
    report.holds = last
        .into_iter()
        .filter(|(_, e)| e.kind == Kind::Rollback && q.matches_scope(e))
        .map(|((app, env), e)| HoldOpen {
            team: e.team.clone(),
            app,
            env,
            version: e.version.clone(),
            since: e.time,
            actor: e.actor.clone(),
        })
        .collect();
    report
}

fn most_first(counts: BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

fn keys(ds: &[&Deployment], len_ms: i64) -> Keys {
    let deployments = ds.len() as u64;
    let mut leads: Vec<f64> = ds.iter().filter_map(|d| d.lead).collect();
    let mut recoveries: Vec<f64> = ds.iter().filter_map(|d| d.recovered_after).collect();
    let failed = recoveries.len() as u64;
    Keys {
        deployments,
        failed,
        deploys_per_day: deployments as f64 / (len_ms as f64 / DAY_MS as f64),
        lead_median: median(&mut leads),
        lead_p90: percentile(&mut leads, 0.9),
        failure_rate: (deployments > 0).then(|| failed as f64 / deployments as f64),
        recovery_median: median(&mut recoveries),
    }
}

/// The middle value; for an even count, the mean of the two middle ones.
pub fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Nearest rank: the smallest value with at least `p` of the values at or below it.
pub fn percentile(v: &mut [f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = (p * v.len() as f64).ceil().max(1.0) as usize;
    Some(v[rank.min(v.len()) - 1])
}

/// Whether a key got better, worse or stayed; `None` when either window has no data.
fn trend(cur: Option<f64>, prev: Option<f64>, higher_is_better: bool) -> Value {
    match (cur, prev) {
        (Some(c), Some(p)) => {
            let s = if (c - p).abs() < 1e-9 {
                "same"
            } else if (c > p) == higher_is_better {
                "better"
            } else {
                "worse"
            };
            json!(s)
        }
        _ => Value::Null,
    }
}

fn keys_json(k: &Keys) -> Value {
    json!({
        "deployments": k.deployments,
        "failed_deployments": k.failed,
        "deploys_per_day": k.deploys_per_day,
        "lead_time_seconds": {"median": k.lead_median, "p90": k.lead_p90},
        "change_failure_rate": k.failure_rate,
        "recovery_seconds": {"median": k.recovery_median},
    })
}

pub fn bands(k: &Keys) -> [Option<Band>; 4] {
    [
        Some(Band::of_frequency(k.deploys_per_day)),
        k.lead_median.map(Band::of_lead_time),
        k.failure_rate.map(Band::of_failure_rate),
        k.recovery_median.map(Band::of_recovery),
    ]
}

impl Group {
    pub fn trends(&self) -> [Value; 4] {
        let (c, p) = (&self.current, &self.previous);
        [
            trend(Some(c.deploys_per_day), Some(p.deploys_per_day), true),
            trend(c.lead_median, p.lead_median, false),
            trend(c.failure_rate, p.failure_rate, false),
            trend(c.recovery_median, p.recovery_median, false),
        ]
    }
}

impl Report {
    /// The `report --output json` object PRODUCT.md pins (plus what it leaves open:
    /// the previous window, trends, drift, checks and holds).
    pub fn to_json(&self) -> Value {
        let groups: Vec<Value> = self
            .groups
            .iter()
            .map(|g| {
                let mut v = keys_json(&g.current);
                let obj = v.as_object_mut().expect("an object");
                let mut head = serde_json::Map::new();
                head.insert("team".into(), json!(g.team));
                if let Some(a) = &g.app {
                    head.insert("app".into(), json!(a));
                }
                if let Some(e) = &g.env {
                    head.insert("env".into(), json!(e));
                }
                head.append(obj);
                let [df, lt, cfr, rt] = bands(&g.current).map(|b| json!(b.map(Band::as_str)));
                head.insert(
                    "bands".into(),
                    json!({"deployment_frequency": df, "lead_time": lt, "change_failure_rate": cfr, "recovery_time": rt}),
                );
                let [df, lt, cfr, rt] = g.trends();
                head.insert(
                    "trend".into(),
                    json!({"deployment_frequency": df, "lead_time": lt, "change_failure_rate": cfr, "recovery_time": rt}),
                );
                head.insert("previous".into(), keys_json(&g.previous));
                Value::Object(head)
            })
            .collect();
        json!({
            "since": super::rfc3339(self.since),
            "until": super::rfc3339(self.until),
            "environments": self.deploy_envs,
            "groups": groups,
            "rejections": self.rejections.iter().map(|(r, n)| json!({"rule": r, "count": n})).collect::<Vec<_>>(),
            "drift": {
                "verify_runs": self.verify_runs,
                "with_drift": self.verify_with_drift,
                "rules": self.drift_rules.iter().map(|(r, n)| json!({"rule": r, "count": n})).collect::<Vec<_>>(),
            },
            "checks": {"runs": self.checks, "failed": self.checks_failed},
            "holds": self.holds.iter().map(|h| json!({
                "team": h.team, "app": h.app, "env": h.env, "version": h.version,
                "since": super::rfc3339(h.since), "actor": h.actor,
            })).collect::<Vec<_>>(),
        })
    }

    /// One row per group; figures with no data are empty cells.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "team,app,env,deployments,failed_deployments,deploys_per_day,lead_time_median_seconds,lead_time_p90_seconds,change_failure_rate,recovery_median_seconds,band_deployment_frequency,band_lead_time,band_change_failure_rate,band_recovery_time,previous_deployments,previous_deploys_per_day,previous_lead_time_median_seconds,previous_change_failure_rate,previous_recovery_median_seconds\n",
        );
        for g in &self.groups {
            let (c, p) = (&g.current, &g.previous);
            let b = bands(c);
            let cells: Vec<String> = vec![
                csv_cell(&g.team),
                csv_cell(g.app.as_deref().unwrap_or("")),
                csv_cell(g.env.as_deref().unwrap_or("")),
                c.deployments.to_string(),
                c.failed.to_string(),
                num(Some(c.deploys_per_day)),
                num(c.lead_median),
                num(c.lead_p90),
                num(c.failure_rate),
                num(c.recovery_median),
                b[0].map(Band::as_str).unwrap_or("").into(),
                b[1].map(Band::as_str).unwrap_or("").into(),
                b[2].map(Band::as_str).unwrap_or("").into(),
                b[3].map(Band::as_str).unwrap_or("").into(),
                p.deployments.to_string(),
                num(Some(p.deploys_per_day)),
                num(p.lead_median),
                num(p.failure_rate),
                num(p.recovery_median),
            ];
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }

    /// A table for people.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "DORA report {} .. {} (deployments to {})\n\n",
            super::rfc3339(self.since),
            super::rfc3339(self.until),
            if self.deploy_envs.is_empty() {
                "every environment".into()
            } else {
                self.deploy_envs.join(", ")
            }
        );
        let mut rows = vec![[
            "team".to_string(),
            "deploys".into(),
            "per day".into(),
            "lead time (median / p90)".into(),
            "change failure rate".into(),
            "recovery (median)".into(),
        ]];
        for g in &self.groups {
            let c = &g.current;
            let b = bands(c);
            let t = g.trends();
            let tag = |band: Option<Band>, trend: &Value| {
                let band = band.map(Band::as_str).unwrap_or("-");
                match trend.as_str() {
                    Some(tr) => format!(" [{band}, {tr}]"),
                    None => format!(" [{band}]"),
                }
            };
            let mut team = g.team.clone();
            if let Some(a) = &g.app {
                team.push_str(&format!(" / {a}"));
            }
            if let Some(e) = &g.env {
                team.push_str(&format!(" / {e}"));
            }
            rows.push([
                printable(&team),
                c.deployments.to_string(),
                format!("{:.2}{}", c.deploys_per_day, tag(b[0], &t[0])),
                format!(
                    "{} / {}{}",
                    duration(c.lead_median),
                    duration(c.lead_p90),
                    tag(b[1], &t[1])
                ),
                format!(
                    "{}{}",
                    c.failure_rate
                        .map(|r| format!("{:.1}%", r * 100.0))
                        .unwrap_or_else(|| "-".into()),
                    tag(b[2], &t[2])
                ),
                format!("{}{}", duration(c.recovery_median), tag(b[3], &t[3])),
            ]);
        }
        let widths: Vec<usize> = (0..6)
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        for r in &rows {
            let line: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        if self.groups.is_empty() {
            out.push_str("(no deployments in this window)\n");
        }
        out.push_str("\nrejected deploys by rule:\n");
        if self.rejections.is_empty() {
            out.push_str("  none\n");
        }
        for (rule, n) in &self.rejections {
            out.push_str(&format!("  {n:>6}  {}\n", printable(rule)));
        }
        out.push_str(&format!(
            "\nverify: {} run(s), {} found drift\n",
            self.verify_runs, self.verify_with_drift
        ));
        out.push_str(&format!("holds open now: {}\n", self.holds.len()));
        for h in &self.holds {
            out.push_str(&format!(
                "  {}/{} on {} since {} by {}\n",
                printable(&h.app),
                printable(&h.env),
                printable(h.version.as_deref().unwrap_or("-")),
                super::rfc3339(h.since),
                printable(h.actor.as_deref().unwrap_or("-")),
            ));
        }
        out
    }
}

/// One line of text without control characters: names come from commits anyone could
/// have pushed.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

fn num(v: Option<f64>) -> String {
    v.map(|x| {
        let s = format!("{x:.6}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    })
    .unwrap_or_default()
}

fn csv_cell(s: &str) -> String {
    // Quoted when needed (RFC 4180); a leading formula character is neutralised so a
    // spreadsheet never evaluates a team or app name.
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// `3d 4h`, `2h 5m`, `40s`: two units at most.
pub fn duration(seconds: Option<f64>) -> String {
    let Some(s) = seconds else {
        return "-".into();
    };
    let s = s.round() as i64;
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {sec}s")
    } else {
        format!("{sec}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_and_medians_average_the_middle() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(median(&mut v), Some(2.5));
        assert_eq!(percentile(&mut v, 0.9), Some(4.0));
        let mut v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 0.9), Some(9.0));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn bands_follow_the_dora_thresholds() {
        assert_eq!(Band::of_frequency(1.0), Band::Elite);
        assert_eq!(Band::of_frequency(0.5), Band::High);
        assert_eq!(Band::of_frequency(0.1), Band::Medium);
        assert_eq!(Band::of_frequency(0.01), Band::Low);
        assert_eq!(Band::of_lead_time(3_600.0), Band::Elite);
        assert_eq!(Band::of_lead_time(86_400.0), Band::High);
        assert_eq!(Band::of_failure_rate(0.05), Band::Elite);
        assert_eq!(Band::of_failure_rate(0.2), Band::Low);
        assert_eq!(Band::of_recovery(3_599.0), Band::Elite);
        assert_eq!(Band::of_recovery(7.0 * 86_400.0), Band::Low);
    }

    #[test]
    fn csv_cells_cannot_become_formulas() {
        assert_eq!(csv_cell("=cmd()"), "'=cmd()");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
    }
}
