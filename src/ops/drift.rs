//! Drift: what an `apps/<app>/<env>/` directory holds against what its stored values
//! render to now. The one implementation, over any tree source (`ops::tree`), behind
//! both `verify` and the server's check of the GitOps repository's pull requests.
//!
//! The stored `values.yaml` is loaded and rendered exactly as a deploy would, and the
//! directory is compared with the result: names, kinds, modes and blob ids. What is
//! rendered is a set of regular, non-executable files; anything else is drift: a file
//! that differs, is missing or is unexpected; a symlink, gitlink or subdirectory; an
//! executable bit. A rollback's `HOLD` (a regular file) is gitops-render's own and never
//! drift. Files are compared by blob id, so only `values.yaml` is read, plus, when the
//! caller wants the first line that differs (`locate`), the files that differ.
//!
//! Three steps, so a caller can run the middle one in parallel: `read` (I/O, from the
//! source), `judge` (CPU only: load, render, compare), `locate` (I/O, optional).
//! `findings` turns the result into the shared finding model.

use std::collections::BTreeMap;

use serde::Serialize;

use super::tree::{blob_id, Blob, Entry, Kind, Listing, TreeSource};
use crate::check::{check, Request};
use crate::error::Result;
use crate::findings::Finding;
use crate::layout::{self, AppDir};
use crate::platform::Platform;
use crate::repo::trust;
use crate::values::{self, Resolve};

/// One thing wrong with one path.
#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    /// `apps/<app>/<env>/<file>`, or the shorter path of what stands where a directory
    /// should be.
    pub path: String,
    /// `differs`, `missing`, `unexpected`, `type` (not a regular file), `mode`
    /// (executable), `too-large` or `unrenderable`.
    pub problem: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The commit that last changed this path, and its author (`verify`'s blame walk).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Why it differs, from that commit: `hand-edit` (not a gitops-render commit),
    /// `older-platform` (gitops-render, with another platform than today's),
    /// `values-changed` (gitops-render with today's platform, so its values changed
    /// since), or `not-found` (not changed within the commits read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<&'static str>,
    /// The first line that differs, once `locate` has read the file.
    #[serde(skip)]
    pub line: Option<u32>,
    /// What kind of thing stands in the values' place, for `findings`.
    #[serde(skip)]
    why: Why,
}

impl Drift {
    /// Who last changed the path and why it differs, as `verify`'s blame walk found it
    /// (empty when it did not look): `; last changed in 4f2a9c1 by Name (edited by
    /// hand)`. `commits_read` says how far a walk that found nothing went.
    pub fn provenance(&self, commits_read: Option<usize>) -> String {
        let who = match (&self.commit, &self.author) {
            (Some(c), Some(a)) => format!(
                "; last changed in {} by {}",
                super::short(c),
                super::printable(a)
            ),
            _ => String::new(),
        };
        let why = match self.cause {
            Some("hand-edit") => " (edited by hand)".to_string(),
            Some("older-platform") => {
                " (rendered by an older platform: `rerender` updates it)".to_string()
            }
            Some("values-changed") => {
                " (its values.yaml changed since it was rendered)".to_string()
            }
            Some("not-found") => match commits_read {
                Some(n) => format!("; not changed in the last {n} commit(s) read"),
                None => "; not changed in the commits read".to_string(),
            },
            _ => String::new(),
        };
        format!("{who}{why}")
    }
}

/// Something standing where an app or environment directory should be, found before
/// any directory is read (a file named like an app, a symlink): a finding on that path.
pub fn stray(d: &Drift) -> Finding {
    Finding::error(
        "manifest-drift",
        format!("`{}`: {}", d.path, d.detail.as_deref().unwrap_or(d.problem)),
    )
    .in_file(&d.path)
}

/// Why a directory could not be rendered, for the finding's rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Why {
    #[default]
    Files,
    NoValues,
    UnknownEnv,
    Rejected,
    WrongApp,
}

pub fn drift(path: &str, problem: &'static str) -> Drift {
    Drift {
        path: path.to_string(),
        problem,
        detail: None,
        commit: None,
        author: None,
        cause: None,
        line: None,
        why: Why::Files,
    }
}

/// How stored values are judged before their rendering is compared: rendered only
/// (`verify`, which answers "is the repository what its values render?"), or through
/// the whole `check` with the policies (a pull request to the GitOps repository, which
/// may also have changed the values by hand).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judge {
    Render,
    Check,
}

/// What one directory holds, read from a source.
#[derive(Debug, Clone)]
pub struct Stored {
    pub dir: AppDir,
    pub listing: Listing,
    /// `values.yaml`'s bytes, or why it cannot be read.
    pub values: std::result::Result<Vec<u8>, String>,
}

/// The verdict on one directory.
#[derive(Debug, Clone, Default)]
pub struct Judged {
    pub drift: Vec<Drift>,
    /// What the checks found in the stored values (all of them with `Judge::Check`; the
    /// values errors that stop a rendering with `Judge::Render`).
    pub values: Vec<Finding>,
    /// What the values render, when they do.
    pub rendered: Option<BTreeMap<String, Vec<u8>>>,
}

/// Reads one directory; `None` if it is not there (or holds nothing: removed).
pub async fn read<T: TreeSource>(source: &T, dir: &AppDir) -> Result<Option<Stored>> {
    match source.list(&dir.path()).await? {
        Some(listing) if !listing.is_empty() => Ok(Some(stored(source, dir, listing).await?)),
        _ => Ok(None),
    }
}

async fn stored<T: TreeSource>(source: &T, dir: &AppDir, listing: Listing) -> Result<Stored> {
    let values = match listing.get(layout::VALUES) {
        None => Err("no values.yaml to render this directory from".to_string()),
        Some(e) if !matches!(e.kind, Kind::File) => {
            Err(format!("values.yaml is {}", e.kind.name()))
        }
        Some(_) => match source.read(&[dir.values()]).await?.pop() {
            Some(Blob::Bytes(b)) => Ok(b),
            Some(Blob::TooLarge(size)) => Err(format!(
                "values.yaml is {size} bytes, over the {} byte bound: not read",
                trust::MAX_STORED_FILE
            )),
            _ => Err("no values.yaml to render this directory from".to_string()),
        },
    };
    Ok(Stored {
        dir: dir.clone(),
        listing,
        values,
    })
}

/// Reads every directory under `apps/`, with drift for whatever stands where a
/// directory should be (`verify`'s scope: the whole repository).
pub async fn read_all<T: TreeSource>(source: &T) -> Result<(Vec<Stored>, Vec<Drift>)> {
    let mut out = Vec::new();
    let mut drift = Vec::new();
    let root = source.list("").await?.unwrap_or_default();
    let Some(apps) = root.get(layout::APPS) else {
        return Ok((out, drift));
    };
    if apps.kind != Kind::Dir {
        drift.push(not_a_dir(source, layout::APPS, *apps, "the apps/ directory").await?);
        return Ok((out, drift));
    }
    for (app, entry) in source.list(layout::APPS).await?.unwrap_or_default() {
        let app_path = AppDir::app_path(&app);
        if entry.kind != Kind::Dir {
            drift.push(not_a_dir(source, &app_path, entry, "an app directory").await?);
            continue;
        }
        for (env, entry) in source.list(&app_path).await?.unwrap_or_default() {
            let dir = AppDir::new(&app, &env);
            if entry.kind != Kind::Dir {
                drift
                    .push(not_a_dir(source, &dir.path(), entry, "an environment directory").await?);
                continue;
            }
            let listing = source.list(&dir.path()).await?.unwrap_or_default();
            out.push(stored(source, &dir, listing).await?);
        }
    }
    Ok((out, drift))
}

async fn not_a_dir<T: TreeSource>(
    source: &T,
    path: &str,
    entry: Entry,
    what: &str,
) -> Result<Drift> {
    let target = match entry.kind {
        Kind::Symlink => match source.read(&[path.to_string()]).await?.pop() {
            Some(Blob::Bytes(b)) => format!(" (-> {})", String::from_utf8_lossy(&b)),
            Some(Blob::TooLarge(size)) => format!(" (a target of {size} bytes)"),
            _ => String::new(),
        },
        Kind::Submodule => format!(" (at {})", entry.id),
        _ => String::new(),
    };
    Ok(Drift {
        detail: Some(format!(
            "{} stands where {what} should be{target}",
            entry.kind.name()
        )),
        ..drift(path, "type")
    })
}

/// Loads, renders and compares one directory: no I/O, safe to run in parallel.
pub fn judge(platform: &Platform, s: &Stored, how: Judge) -> Result<Judged> {
    let values_path = s.dir.values();
    let whole = |problem, detail: String, why| Drift {
        detail: Some(detail),
        why,
        ..drift(&values_path, problem)
    };
    let only = |d: Drift| Judged {
        drift: vec![d],
        ..Judged::default()
    };
    let values = match &s.values {
        Ok(v) => v,
        Err(why) if !s.listing.contains_key(layout::VALUES) => {
            return Ok(only(whole("missing", why.clone(), Why::NoValues)))
        }
        Err(why) => return Ok(only(whole("unrenderable", why.clone(), Why::NoValues))),
    };
    if !platform.settings.environments.contains(&s.dir.env) {
        return Ok(only(whole(
            "unrenderable",
            format!("`{}` is not an environment of this platform", s.dir.env),
            Why::UnknownEnv,
        )));
    }
    let (findings, rendering) = match how {
        Judge::Render => {
            let (_, findings, accepted) = values::load(
                platform,
                &values_path,
                values,
                Resolve {
                    env: &s.dir.env,
                    tag: None,
                },
            );
            let rendering = accepted
                .map(|a| crate::render::render(&platform.templates, &platform.settings, &a))
                .transpose()?;
            let errors = findings.into_iter().filter(Finding::is_error).collect();
            (errors, rendering)
        }
        Judge::Check => {
            let checked = check(
                platform,
                &Request {
                    path: &values_path,
                    bytes: values,
                    env: &s.dir.env,
                    tag: None,
                    source_repo: None,
                    actor: None,
                },
            )?;
            (checked.report.findings, checked.rendering)
        }
    };
    let Some(rendering) = rendering else {
        let why = findings
            .iter()
            .find(|f| f.is_error())
            .map(|f| f.message.clone())
            .unwrap_or_else(|| "rejected".into());
        return Ok(Judged {
            drift: vec![whole("unrenderable", why, Why::Rejected)],
            values: findings,
            rendered: None,
        });
    };
    if rendering.app != s.dir.app {
        return Ok(Judged {
            drift: vec![whole(
                "unrenderable",
                format!(
                    "values.yaml is for app `{}`, not `{}`",
                    rendering.app, s.dir.app
                ),
                Why::WrongApp,
            )],
            values: findings,
            rendered: None,
        });
    }
    let drift = compare(&s.dir, &s.listing, &rendering.files)?;
    Ok(Judged {
        drift,
        values: findings,
        rendered: Some(rendering.files),
    })
}

/// The directory as it is against the files rendered for it.
pub fn compare(
    dir: &AppDir,
    listing: &Listing,
    rendered: &BTreeMap<String, Vec<u8>>,
) -> Result<Vec<Drift>> {
    let mut out = Vec::new();
    for (name, bytes) in rendered {
        let path = dir.file(name);
        let Some(entry) = listing.get(name) else {
            out.push(drift(&path, "missing"));
            continue;
        };
        if entry.kind.is_file() {
            if entry.id != blob_id(bytes)? {
                out.push(drift(&path, "differs"));
            }
            if entry.kind == Kind::Executable {
                out.push(Drift {
                    detail: Some("executable (100755); rendered files are 100644".into()),
                    ..drift(&path, "mode")
                });
            }
        } else {
            out.push(Drift {
                detail: Some(format!("{} where a file is rendered", entry.kind.name())),
                ..drift(&path, "type")
            });
        }
    }
    for (name, entry) in listing {
        if rendered.contains_key(name) {
            continue;
        }
        // A hold is gitops-render's own file, written beside the manifests on purpose.
        if name == layout::HOLD && entry.kind == Kind::File {
            continue;
        }
        let path = dir.file(name);
        out.push(match entry.kind {
            Kind::File => drift(&path, "unexpected"),
            other => Drift {
                detail: Some(format!("{}, which nothing renders", other.name())),
                ..drift(&path, "unexpected")
            },
        });
    }
    Ok(out)
}

/// Reads the files that differ and notes the first line where they do; a file over the
/// bound for stored files becomes `too-large` instead.
pub async fn locate<T: TreeSource>(source: &T, judged: &mut Judged) -> Result<()> {
    let Some(rendered) = &judged.rendered else {
        return Ok(());
    };
    let wanted: Vec<usize> = (0..judged.drift.len())
        .filter(|&i| judged.drift[i].problem == "differs")
        .collect();
    let paths: Vec<String> = wanted
        .iter()
        .map(|&i| judged.drift[i].path.clone())
        .collect();
    let blobs = source.read(&paths).await?;
    for (i, blob) in wanted.into_iter().zip(blobs) {
        let d = &mut judged.drift[i];
        let name = d.path.rsplit('/').next().unwrap_or_default();
        match blob {
            Blob::Bytes(got) => {
                if let Some(want) = rendered.get(name) {
                    d.line = Some(first_difference(&got, want));
                }
            }
            Blob::TooLarge(size) => {
                d.problem = "too-large";
                d.detail = Some(format!(
                    "{size} bytes, over the {} byte bound for stored files: not read",
                    trust::MAX_STORED_FILE
                ));
            }
            Blob::Absent => {}
        }
    }
    Ok(())
}

/// The 1-based line where two texts first differ.
pub fn first_difference(a: &[u8], b: &[u8]) -> u32 {
    let at = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    1 + a[..at].iter().filter(|&&c| c == b'\n').count() as u32
}

/// The verdict as findings: the values' own, then one per drifting path, each with the
/// rule the registry (`rules.rs`) names and a way back to what gitops-render writes.
pub fn findings(platform: &Platform, stored: &Stored, judged: &Judged) -> Vec<Finding> {
    let dir = &stored.dir;
    let values_path = dir.values();
    let help = format!(
        "gitops-render owns this file: change values.yaml through a deploy instead, or commit exactly what `gitops-render render {values_path} --env {} --out {}` writes",
        dir.env,
        dir.path()
    );
    let mut out = judged.values.clone();
    for d in &judged.drift {
        let detail = d.detail.clone().unwrap_or_default();
        let finding = match (d.why, d.problem) {
            (Why::NoValues, "missing") => {
                let first = stored.listing.keys().next().map(|n| dir.file(n));
                Finding::error(
                    "values-missing",
                    format!("`{}/` holds manifests but no values.yaml to render them from", dir.path()),
                )
                .in_file(first.as_deref().unwrap_or(&values_path))
                .help("every app directory is written by gitops-render with its values.yaml; deploy the app instead of adding files by hand")
            }
            (Why::NoValues, _) => {
                Finding::error("values-missing", format!("`{values_path}`: {detail}"))
                    .in_file(&values_path)
            }
            (Why::UnknownEnv, _) => Finding::error(
                "unknown-environment",
                format!(
                    "`{}/` is for environment `{}`, which this platform does not have ({})",
                    dir.path(),
                    dir.env,
                    platform.settings.environments.join(", ")
                ),
            )
            .in_file(&values_path),
            // The values' own findings say why.
            (Why::Rejected, _) => continue,
            (Why::WrongApp, _) => Finding::error(
                "manifest-drift",
                format!("`{values_path}`: {detail}; the directory does not render from it"),
            )
            .in_file(&values_path),
            (Why::Files, "differs") => match d.line {
                Some(line) => Finding::error(
                    "manifest-drift",
                    format!(
                        "`{}` differs from what its values.yaml renders (line {line}): edited by hand?",
                        d.path
                    ),
                )
                .at(&d.path, crate::yaml::Pos { line, column: 1 }),
                None => Finding::error(
                    "manifest-drift",
                    format!(
                        "`{}` differs from what its values.yaml renders: edited by hand?",
                        d.path
                    ),
                )
                .in_file(&d.path),
            }
            .help(help.clone()),
            (Why::Files, "missing") => Finding::error(
                "manifest-missing",
                format!("`{}` is missing: values.yaml renders it", d.path),
            )
            .in_file(&values_path)
            .help(help.clone()),
            (Why::Files, "unexpected") => {
                let what = d
                    .detail
                    .as_ref()
                    .map(|x| format!(" ({x})"))
                    .unwrap_or_default();
                Finding::error(
                    "manifest-unexpected",
                    format!("`{}` is not rendered from values.yaml{what}", d.path),
                )
                .at(&d.path, crate::yaml::Pos { line: 1, column: 1 })
                .help(help.clone())
            }
            // `type`, `mode`, `too-large`: the file is not what is rendered.
            (Why::Files, _) => {
                Finding::error("manifest-drift", format!("`{}`: {detail}", d.path))
                    .in_file(&d.path)
                    .help(help.clone())
            }
        };
        let provenance = d.provenance(None);
        out.push(if provenance.is_empty() {
            finding
        } else {
            Finding {
                message: format!("{}{provenance}", finding.message),
                ..finding
            }
        });
    }
    out
}

/// One directory of a pull request or a repository, judged and located: what the
/// server's GitOps check shows per directory.
#[derive(Debug, Clone)]
pub struct DirReport {
    pub dir: AppDir,
    /// `None`: the directory is gone (removed entirely), nothing left to drift.
    pub judged: Option<(Stored, Judged)>,
    pub findings: Vec<Finding>,
}

/// Reads, judges and locates one directory.
pub async fn check_dir<T: TreeSource>(
    source: &T,
    platform: &Platform,
    dir: &AppDir,
    how: Judge,
) -> Result<DirReport> {
    let Some(stored) = read(source, dir).await? else {
        return Ok(DirReport {
            dir: dir.clone(),
            judged: None,
            findings: Vec::new(),
        });
    };
    let mut judged = judge(platform, &stored, how)?;
    locate(source, &mut judged).await?;
    let findings = findings(platform, &stored, &judged);
    Ok(DirReport {
        dir: dir.clone(),
        judged: Some((stored, judged)),
        findings,
    })
}

/// What renders now against what the source holds, as a unified diff: the block a team's
/// pull request check shows per environment. Only files whose blob id differs are read.
pub async fn diff_dir<T: TreeSource>(
    source: &T,
    dir: &AppDir,
    rendered: &BTreeMap<String, Vec<u8>>,
) -> Result<crate::repo::diff::Diff> {
    let listing: Listing = source
        .list(&dir.path())
        .await?
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, e)| e.kind.is_file())
        .collect();
    let mut fetch = Vec::new();
    let mut after = BTreeMap::new();
    for (name, bytes) in rendered {
        match listing.get(name) {
            Some(e) if e.id == blob_id(bytes)? => {}
            Some(_) => {
                fetch.push(name.clone());
                after.insert(name.clone(), bytes.clone());
            }
            None => {
                after.insert(name.clone(), bytes.clone());
            }
        }
    }
    fetch.extend(
        listing
            .keys()
            .filter(|name| !rendered.contains_key(*name))
            .cloned(),
    );
    let paths: Vec<String> = fetch.iter().map(|n| dir.file(n)).collect();
    let mut before = BTreeMap::new();
    for (name, blob) in fetch.into_iter().zip(source.read(&paths).await?) {
        match blob {
            Blob::Bytes(b) => {
                before.insert(name, b);
            }
            Blob::TooLarge(size) => {
                before.insert(
                    name,
                    format!(
                        "(a file of {size} bytes, over the {} byte bound: not shown)\n",
                        trust::MAX_STORED_FILE
                    )
                    .into_bytes(),
                );
            }
            Blob::Absent => {}
        }
    }
    Ok(crate::repo::diff::unified(
        &dir.path(),
        &before,
        &after,
        false,
    ))
}
