//! Proving manifests: the Kubernetes API schema, then the platform's Rego policies,
//! then the platform's waivers.
//!
//! Both entry points, `check` (rendered from values) and `validate` (manifests from any
//! source), come through here, so a waiver or a rule means the same thing in each.

pub mod crd;
pub mod fields;
pub mod kube;
pub mod manifests;
pub mod policy;
mod schema_walk;

use serde_json::{json, Value};

use crate::error::Result;
use crate::findings::Finding;
use crate::platform::{Platform, Waiver};

/// Who deploys what, from where: the `context` of the policy input.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub app: Option<String>,
    pub env: Option<String>,
    pub team: Option<String>,
    pub source_repo: Option<String>,
    pub actor: Option<String>,
}

impl Context {
    fn to_json(&self) -> Value {
        json!({
            "app": self.app,
            "env": self.env,
            "team": self.team,
            "source_repo": self.source_repo,
            "actor": self.actor,
        })
    }
}

/// The policies' `input`: `{values, manifests, context}`.
pub fn policy_input(values: &Value, manifests: &[&Value], context: &Context) -> Value {
    json!({
        "values": values,
        "manifests": manifests,
        "context": context.to_json(),
    })
}

/// The policy verdict on a set of manifests, with waivers applied. Returns the hits that
/// stand and, separately, notices about expired waivers that matched this app and
/// environment (they no longer silence anything).
pub fn policy_verdict(
    platform: &Platform,
    values: &Value,
    manifests: &[&Value],
    context: &Context,
) -> Result<(Vec<policy::Hit>, Vec<Finding>)> {
    let mut hits = platform
        .policies()?
        .evaluate(policy_input(values, manifests, context))?;
    // `lib.finding_at` names the object by its index and leaves its name to us.
    for hit in &mut hits {
        if hit.resource.is_none() {
            hit.resource = hit
                .object
                .and_then(|i| manifests.get(i))
                .map(|m| manifests::resource_of(m));
        }
    }
    Ok(apply_waivers(
        &platform.waivers,
        context.app.as_deref(),
        context.env.as_deref(),
        platform.today,
        hits,
    ))
}

/// Today in UTC: the date waivers are judged by unless the caller pins another.
pub fn utc_today() -> jiff::civil::Date {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

/// The date `GITOPS_RENDER_TODAY` pins (YYYY-MM-DD), read by the caller (the CLI, once):
/// `None` when unset, so waivers are judged by today. It lets tests and "what will break
/// next month" dry-runs pin the date. A value that is not a date is a usage error:
/// silently judging by today's date instead would make a dry-run for next month answer
/// for today, and nobody would notice.
pub fn pinned_today(value: Option<&std::ffi::OsStr>) -> Result<Option<jiff::civil::Date>> {
    value.map(|v| parse_today(&v.to_string_lossy())).transpose()
}

fn parse_today(text: &str) -> Result<jiff::civil::Date> {
    let bad = || {
        crate::error::Error::usage(format!(
            "GITOPS_RENDER_TODAY={text:?} is not a date (YYYY-MM-DD)"
        ))
        .with_hint("unset it to judge waivers by today's date, or give e.g. 2026-07-01")
    };
    // jiff also accepts a datetime here; only a plain date is meant.
    if text.len() != 10 {
        return Err(bad());
    }
    text.parse().map_err(|_| bad())
}

fn waiver_matches(w: &Waiver, app: Option<&str>, env: Option<&str>) -> bool {
    app == Some(w.app.as_str()) && (w.env == "*" || env == Some(w.env.as_str()))
}

pub fn apply_waivers(
    waivers: &[Waiver],
    app: Option<&str>,
    env: Option<&str>,
    today: jiff::civil::Date,
    hits: Vec<policy::Hit>,
) -> (Vec<policy::Hit>, Vec<Finding>) {
    let mut notices = Vec::new();
    let mut live: Vec<&Waiver> = Vec::new();
    for w in waivers.iter().filter(|w| waiver_matches(w, app, env)) {
        if w.expires < today {
            notices.push(
                Finding::warning(
                    "waiver-expired",
                    format!(
                        "the waiver of `{}` for {}/{} expired on {} and no longer applies (reason given: {})",
                        w.rule, w.app, w.env, w.expires, w.reason
                    ),
                )
                .help(format!(
                    "fix what `{}` reports, or renew the waiver in policies/exceptions.yaml (line {})",
                    w.rule, w.line
                )),
            );
        } else {
            live.push(w);
        }
    }
    let standing = hits
        .into_iter()
        .filter(|h| !live.iter().any(|w| w.rule == h.rule))
        .collect();
    (standing, notices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::Severity;

    fn waiver(rule: &str, env: &str, expires: &str) -> Waiver {
        Waiver {
            rule: rule.into(),
            app: "a".into(),
            env: env.into(),
            reason: "because".into(),
            expires: expires.parse().unwrap(),
            line: 3,
        }
    }

    fn hit(rule: &str) -> policy::Hit {
        policy::Hit {
            rule: rule.into(),
            severity: Severity::Error,
            message: "m".into(),
            field: None,
            resource: None,
            object: None,
            path: None,
        }
    }

    #[test]
    fn a_waiver_silences_only_its_rule_app_and_env_until_it_expires() {
        let today: jiff::civil::Date = "2026-06-01".parse().unwrap();
        let ws = [waiver("r1", "dev", "2026-06-01")];
        let (left, notes) = apply_waivers(
            &ws,
            Some("a"),
            Some("dev"),
            today,
            vec![hit("r1"), hit("r2")],
        );
        assert_eq!(left, vec![hit("r2")]);
        assert!(notes.is_empty());
        let (left, _) = apply_waivers(&ws, Some("a"), Some("prod"), today, vec![hit("r1")]);
        assert_eq!(left.len(), 1);
        let (left, _) = apply_waivers(&ws, Some("b"), Some("dev"), today, vec![hit("r1")]);
        assert_eq!(left.len(), 1);
        let later: jiff::civil::Date = "2026-06-02".parse().unwrap();
        let (left, notes) = apply_waivers(&ws, Some("a"), Some("dev"), later, vec![hit("r1")]);
        assert_eq!(left.len(), 1);
        assert_eq!(notes[0].rule, "waiver-expired");
    }

    #[test]
    fn only_a_plain_date_pins_today() {
        assert_eq!(
            parse_today("2026-02-28").unwrap(),
            jiff::civil::date(2026, 2, 28)
        );
        for bad in ["", "2026-02-30", "tomorrow", "2026-02-28T00:00", "26-2-28"] {
            let e = parse_today(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(e.message.contains("GITOPS_RENDER_TODAY"), "{e}");
        }
    }
}
