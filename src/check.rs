//! The pipeline for one values file: read, render, prove. Everything that judges a
//! values file (`check`, `render`, `deploy`, the GitHub App, `verify`) calls this one
//! function, so they can never disagree.

use std::sync::Arc;

use crate::error::Result;
use crate::findings::{FileReport, Finding};
use crate::platform::Platform;
use crate::render::{self, Rendering};
use crate::validate::{self, kube, Context};
use crate::values::{self, Accepted, Resolve};

/// What to check, and for whom.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// How findings name the file: the path as given, or in the GitHub App the path in
    /// the repository (check-run annotations need exactly that).
    pub path: &'a str,
    pub bytes: &'a [u8],
    pub env: &'a str,
    pub tag: Option<&'a str>,
    pub source_repo: Option<&'a str>,
    pub actor: Option<&'a str>,
}

/// The verdict, and what was made on the way to it.
#[derive(Debug, Clone)]
pub struct Checked {
    pub report: FileReport,
    pub accepted: Option<Accepted>,
    /// Present whenever the values were accepted, even if a policy then failed: callers
    /// must look at `report.ok()` before writing it anywhere.
    pub rendering: Option<Rendering>,
}

impl Checked {
    pub fn ok(&self) -> bool {
        self.report.ok()
    }
}

/// Checks one values file. An `Err` is a platform problem (a template that fails, a
/// policy that cannot be evaluated); everything about the values file is a finding.
pub fn check(platform: &Platform, req: &Request<'_>) -> Result<Checked> {
    let (source, findings, accepted) = values::load(
        platform,
        req.path,
        req.bytes,
        Resolve {
            env: req.env,
            tag: req.tag,
        },
    );
    let mut report = FileReport::new(req.path, source.map(|s: Arc<str>| s));
    report.findings = findings;
    let Some(accepted) = accepted else {
        report.normalise();
        return Ok(Checked {
            report,
            accepted: None,
            rendering: None,
        });
    };

    let rendering = render::render(&platform.templates, &platform.settings, &accepted)?;
    let at_values_root = accepted.positions.value("");

    // The API schema: a failure here is the template's fault, but it is reported, not
    // hidden, so the platform team hears of it from the first team that trips it.
    for m in &rendering.manifests {
        for issue in kube::check(&m.object) {
            let message = format!(
                "{} in the rendered {} ({})",
                issue.message,
                m.resource(),
                m.file
            );
            let f = if issue.is_error {
                Finding::error(issue.rule, message)
            } else {
                Finding::warning(issue.rule, message)
            };
            report.findings.push(
                f.at(req.path, at_values_root)
                    .resource(m.resource())
                    .help("the platform's templates produced this; tell the platform team"),
            );
        }
    }

    let context = Context {
        app: Some(accepted.app.clone()),
        env: Some(accepted.env.clone()),
        team: Some(accepted.team.clone()),
        source_repo: req.source_repo.map(str::to_string),
        actor: req.actor.map(str::to_string),
    };
    let objects: Vec<&serde_json::Value> = rendering.manifests.iter().map(|m| &m.object).collect();
    let (hits, notices) =
        validate::policy_verdict(platform, &accepted.effective, &objects, &context)?;
    for hit in hits {
        let pos = hit
            .field
            .as_deref()
            .map(|f| accepted.locate(f))
            .unwrap_or(at_values_root);
        let mut f = match hit.severity {
            crate::findings::Severity::Error => Finding::error(hit.rule, hit.message),
            crate::findings::Severity::Warning => Finding::warning(hit.rule, hit.message),
        }
        .at(req.path, pos);
        f.resource = hit.resource;
        report.findings.push(f);
    }
    for notice in notices {
        report.findings.push(notice.at(req.path, at_values_root));
    }
    report.normalise();
    Ok(Checked {
        report,
        accepted: Some(accepted),
        rendering: Some(rendering),
    })
}

/// One values file checked in several environments, as one report.
#[derive(Debug, Clone)]
pub struct AllEnvs {
    /// Every environment's findings merged: a finding that holds in several
    /// environments is reported once.
    pub report: FileReport,
    /// Each environment's own result, in the order asked for. Shorter than the list of
    /// environments when the file was rejected before rendering: that fails the same
    /// way everywhere, so the other environments are not tried.
    pub per_env: Vec<Checked>,
}

impl AllEnvs {
    pub fn ok(&self) -> bool {
        self.report.ok()
    }
}

/// Checks one file in every environment of `envs` (`req.env` is ignored). `check` with
/// no `--env` and the GitHub App both call this, so they judge a file alike.
pub fn check_envs(platform: &Platform, req: &Request<'_>, envs: &[String]) -> Result<AllEnvs> {
    let mut merged: Option<FileReport> = None;
    let mut per_env = Vec::with_capacity(envs.len());
    for env in envs {
        let checked = check(platform, &Request { env, ..*req })?;
        let rejected_early = checked.accepted.is_none();
        match &mut merged {
            None => merged = Some(checked.report.clone()),
            Some(m) => m.findings.extend(checked.report.findings.iter().cloned()),
        }
        per_env.push(checked);
        // A file that cannot be read or fails its schema fails the same way everywhere.
        if rejected_early {
            break;
        }
    }
    let mut report = merged.unwrap_or_else(|| FileReport::new(req.path, None));
    report.normalise();
    Ok(AllEnvs { report, per_env })
}
