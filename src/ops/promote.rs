//! Promote: deploy to one environment the values and version another runs now,
//! re-rendered and re-checked for the target environment.

use super::deploy::land;
use super::{version_of, Done, Meta};
use crate::check::{check, Request};
use crate::error::{Error, Result};
use crate::layout::{self, AppDir};
use crate::platform::Platform;
use crate::repo::history::{self, Filter};
use crate::repo::{trust, Change, Intent, Repo};

#[derive(Debug, Clone)]
pub struct Promote<'a> {
    pub app: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    /// Promote although a rollback put `to` on hold, and release the hold.
    pub release_hold: bool,
    pub meta: Meta,
}

pub fn promote(platform: &Platform, repo: &mut Repo, req: &Promote<'_>) -> Result<Done> {
    platform.check_env(req.from)?;
    platform.check_env(req.to)?;
    if req.from == req.to {
        return Err(Error::usage("--from and --to name the same environment"));
    }
    let tip = repo.tip()?;
    let from = AppDir::new(req.app, req.from);
    let from_dir = from.path();
    let values = match repo.dir(tip, &from)? {
        Some(d) => match d.files.get(layout::VALUES) {
            Some(id) => trust::blob_bounded(repo, *id)?.map_err(|size| {
                Error::rejected(format!(
                    "{from_dir}/values.yaml is {size} bytes, over the {} byte bound for stored files",
                    trust::MAX_STORED_FILE
                ))
            })?,
            None => return Err(Error::rejected(format!("{from_dir}/ has no values.yaml"))),
        },
        None => {
            return Err(Error::rejected(format!(
                "{from} is not deployed in {}",
                repo.shown()
            )))
        }
    };
    // The source of what `from` runs comes along, so the commit links the build.
    let mut source = req.meta.source.clone();
    let mut source_time = None;
    if let Some(tip) = tip {
        let filter = Filter {
            app: Some(req.app.to_string()),
            env: Some(req.from.to_string()),
        };
        history::walk(&repo.git, tip, &filter, |e| {
            if source.is_none() {
                source = e.source;
                // The time belongs to that source: lead time is measured from it.
                source_time = e.source_time;
            }
            Ok(false)
        })?;
    }
    let source_repo = req.meta.source_repo.clone().or_else(|| {
        source
            .as_deref()
            .and_then(|s| s.split('@').next())
            .map(str::to_string)
    });
    let path = from.values();
    let checked = check(
        platform,
        &Request {
            path: &path,
            bytes: &values,
            env: req.to,
            tag: None,
            source_repo: source_repo.as_deref(),
            actor: req.meta.actor.as_deref(),
        },
    )?;
    let (Some(rendering), true) = (checked.rendering, checked.report.ok()) else {
        return Ok(Done::rejected(checked.report));
    };
    if rendering.app != req.app {
        return Err(Error::rejected(format!(
            "{path} is for app `{}`, not `{}`",
            rendering.app, req.app
        )));
    }
    let change = Change {
        app: req.app.to_string(),
        env: req.to.to_string(),
        intent: Intent::Promote,
        version: version_of(checked.accepted.as_ref().map(|a| &a.normalised)),
        actor: req
            .meta
            .actor
            .clone()
            .unwrap_or_else(|| repo.committer_email()),
        source,
        message: Some(match &req.meta.message {
            Some(m) => format!("Promoted from {}.\n\n{m}", req.from),
            None => format!("Promoted from {}.", req.from),
        }),
        source_time: req.meta.source_time.clone().or(source_time),
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
