//! Deploy: the verdict of `check` on a values file, then one commit of
//! `apps/<app>/<env>/`; and `land`, the write step deploy and promote share, which
//! refuses while a rollback's hold stands.

use super::{printable, short, version_of, Done, Landed, Meta, Subject};
use crate::check::{check, Request};
use crate::error::Result;
use crate::findings::{FileReport, Finding};
use crate::platform::Platform;
use crate::render::Rendering;
use crate::repo::{hold, trust, Change, Content, Files, Intent, Plan, Repo};

/// A deploy, resolved: the values file's text and where it goes.
#[derive(Debug, Clone)]
pub struct Deploy<'a> {
    /// The values file's path as the user gave it (findings name it) and its bytes.
    pub path: &'a str,
    pub bytes: &'a [u8],
    pub env: &'a str,
    /// The image tag or digest just built, overriding `version`.
    pub tag: Option<&'a str>,
    /// Deploy although a rollback's hold stands, and release it.
    pub release_hold: bool,
    pub meta: Meta,
}

/// Checks the values file, then (only if it passes, so a rejected deploy never creates
/// a repository) opens the repository with `open` and lands the rendering.
pub fn deploy<'r>(
    platform: &Platform,
    req: &Deploy<'_>,
    open: impl FnOnce() -> Result<&'r mut Repo>,
) -> Result<Done> {
    platform.check_env(req.env)?;
    let checked = check(
        platform,
        &Request {
            path: req.path,
            bytes: req.bytes,
            env: req.env,
            tag: req.tag,
            source_repo: req.meta.source_repo.as_deref(),
            actor: req.meta.actor.as_deref(),
        },
    )?;
    let (Some(rendering), true) = (checked.rendering, checked.report.ok()) else {
        let mut done = Done::rejected(checked.report);
        if let Some(a) = &checked.accepted {
            done.subject = Some(Subject {
                team: a.team.clone(),
                app: a.app.clone(),
                version: version_of(Some(&a.normalised)),
            });
        }
        return Ok(done);
    };
    let repo = open()?;
    let change = Change {
        app: rendering.app.clone(),
        env: rendering.env.clone(),
        intent: Intent::Deploy,
        version: version_of(checked.accepted.as_ref().map(|a| &a.normalised)),
        actor: req
            .meta
            .actor
            .clone()
            .unwrap_or_else(|| repo.committer_email()),
        source: req.meta.source.clone(),
        message: req.meta.message.clone(),
        source_time: req.meta.source_time.clone(),
        platform: trust::platform_digest(&platform.files),
        fix: req.meta.fix,
    };
    land(
        repo,
        change,
        &rendering,
        req.release_hold,
        req.meta.dry_run,
        checked.report,
    )
}

/// Commits a rendering (deploy and promote). The plan, run against every tip it builds
/// on, refuses while the directory holds a rollback's hold, unless `release_hold`,
/// which writes the directory without it.
pub fn land(
    repo: &mut Repo,
    change: Change,
    rendering: &Rendering,
    release_hold: bool,
    dry_run: bool,
    report: FileReport,
) -> Result<Done> {
    let files: Files = rendering
        .files
        .iter()
        .map(|(k, v)| (k.clone(), Content::Bytes(v.clone())))
        .collect();
    let outcome = repo.apply(&change, dry_run, |repo, _tip, current| {
        match current.and_then(|d| d.files.get(hold::FILE)) {
            Some(id) if !release_hold => {
                // Bounded like every stored file; one over the bound still holds.
                let bytes = trust::blob_bounded(repo, *id)?.unwrap_or_default();
                let hold = hold::Hold::parse(&bytes);
                Ok(Plan::Refuse(vec![on_hold(&change, &hold)]))
            }
            _ => Ok(Plan::Write(files.clone())),
        }
    })?;
    Ok(Done::landed(
        report,
        Landed {
            repo: repo.shown(),
            branch: repo.branch().to_string(),
            change,
            outcome,
        },
    ))
}

/// The refusal of a change to a held directory: a finding like any policy's, on the
/// hold file, with the way out as its help.
pub fn on_hold(change: &Change, hold: &hold::Hold) -> Finding {
    let dir = change.app_dir();
    let since = if hold.restored.is_empty() {
        String::new()
    } else {
        format!(" (restored from {})", short(&hold.restored))
    };
    Finding::error(
        "rollback-hold",
        format!(
            "{dir} is on hold after a rollback to {}{} by {}; nothing was committed",
            printable(&hold.version),
            printable(&since),
            printable(&hold.actor)
        ),
    )
    .in_file(&dir.hold())
    .help(format!(
        "when the fix is ready, deploy it with --release-hold to release the hold on {dir}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::AppDir;
    use crate::output::Format;
    use crate::repo::{Create, Location, Options, Outcome};

    /// The plan decides, it does not fail: a hold is a refusal whose finding every
    /// output format shows, with nothing written; `--release-hold` writes past it.
    #[test]
    fn a_hold_is_a_refused_outcome_with_the_rollback_hold_finding_in_every_format() {
        let tmp = tempfile::tempdir().unwrap();
        let location = Location::Local(tmp.path().join("gitops.git"));
        let mut repo = Repo::open(&location, &Options::default(), Create::IfMissing).unwrap();
        let platform = Platform::resolve(None).unwrap();
        let checked = check(
            &platform,
            &Request {
                path: "payments-api.yaml",
                bytes: include_bytes!("../../examples/payments-api.yaml"),
                env: "prod",
                tag: None,
                source_repo: None,
                actor: None,
            },
        )
        .unwrap();
        let rendering = checked.rendering.unwrap();
        let change = |intent| Change {
            app: "payments-api".into(),
            env: "prod".into(),
            intent,
            version: "1.4.2".into(),
            actor: "ci@payments".into(),
            source: None,
            message: None,
            source_time: None,
            platform: "sha256:0".into(),
            fix: false,
        };
        let hold = hold::Hold {
            version: "1.4.1".into(),
            restored: "abc1234def".into(),
            actor: "ops@payments".into(),
            reason: None,
        };
        let mut files: Files = rendering
            .files
            .iter()
            .map(|(k, v)| (k.clone(), Content::Bytes(v.clone())))
            .collect();
        files.insert(
            hold::FILE.into(),
            Content::Bytes(hold.to_bytes("payments-api", "prod")),
        );
        let held = repo
            .apply(&change(Intent::Rollback), false, |_, _, _| {
                Ok(Plan::Write(files.clone()))
            })
            .unwrap();
        let Outcome::Committed { commit, .. } = held else {
            panic!("{held:?}")
        };

        let report = || FileReport::new("payments-api.yaml", None);
        let done = land(
            &mut repo,
            change(Intent::Deploy),
            &rendering,
            false,
            false,
            report(),
        )
        .unwrap();
        let Some(Landed {
            outcome: Outcome::Refused { tip, findings },
            ..
        }) = &done.landed
        else {
            panic!("{:?}", done.landed)
        };
        assert_eq!(*tip, Some(commit));
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].rule, "rollback-hold");
        assert!(!done.ok());
        assert_eq!(done.exit_code(), crate::error::exit::REJECTED);
        assert_eq!(repo.tip().unwrap(), Some(commit), "nothing landed");

        let json: serde_json::Value =
            serde_json::from_str(&done.print(Format::Json, &Default::default()).stdout).unwrap();
        assert_eq!(json["ok"], false);
        assert_eq!(json["findings"][0]["rule"], "rollback-hold");
        assert_eq!(json["findings"][0]["file"], "apps/payments-api/prod/HOLD");
        assert!(json.get("deploy").is_none(), "{json}");
        let sarif: serde_json::Value =
            serde_json::from_str(&done.print(Format::Sarif, &Default::default()).stdout).unwrap();
        assert_eq!(sarif["runs"][0]["results"][0]["ruleId"], "rollback-hold");
        let github = done.print(Format::Github, &Default::default()).stdout;
        assert!(
            github.starts_with("::error file=apps/payments-api/prod/HOLD"),
            "{github}"
        );
        assert!(done
            .print(Format::Text, &Default::default())
            .stdout
            .contains("on hold"));

        // Released: written without the hold, in one commit.
        let done = land(
            &mut repo,
            change(Intent::Deploy),
            &rendering,
            true,
            false,
            report(),
        )
        .unwrap();
        assert!(done.ok());
        let Some(Landed {
            outcome: Outcome::Committed {
                commit: released, ..
            },
            ..
        }) = &done.landed
        else {
            panic!("{:?}", done.landed)
        };
        let dir = repo
            .dir(Some(*released), &AppDir::new("payments-api", "prod"))
            .unwrap()
            .unwrap();
        assert!(!dir.files.contains_key(hold::FILE));
        let json = done.json().unwrap();
        assert_eq!(json["deploy"]["commit"], released.to_string());
        assert_eq!(json["deploy"]["changed"], true);
    }
}
