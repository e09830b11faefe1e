//! Rerender: after the platform team changes templates or policies, bring every app up
//! to date from its stored values, one commit per app and environment (intent
//! `rerender`), so each stays its own unit for rollback.
//!
//! Planning reads the tip once and renders every directory in parallel with the same
//! pipeline as `check`; only directories whose files would change are committed. An app
//! whose stored values no longer pass is left exactly as it is and reported. A hold
//! (from a rollback) is kept: rerender changes how a version is rendered, never which
//! version runs.

use std::collections::{BTreeMap, BTreeSet};

use gix::ObjectId;
use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::check::{check, Request};
use crate::error::Result;
use crate::findings::Finding;
use crate::layout;
use crate::platform::Platform;
use crate::repo::stored::{stored_dirs, StoredDir};
use crate::repo::{git_err, hold, trust, Content, Files, Repo};

/// What one file of a directory would go through.
#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    pub file: String,
    /// `added`, `removed` or `modified`.
    pub change: &'static str,
    /// For a modified manifest: the fields that differ, as dotted paths, at most a few
    /// levels deep (`spec.template.spec.containers.0.resources`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// The blob it replaces, for a modified manifest.
    #[serde(skip)]
    old: Option<ObjectId>,
}

/// One directory that would change.
#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    pub app: String,
    pub env: String,
    pub version: String,
    pub changes: Vec<FileChange>,
    /// The directory's tree the plan was made against.
    #[serde(skip)]
    pub base: ObjectId,
    #[serde(skip)]
    pub files: Files,
}

/// One directory left untouched because its stored values no longer pass.
#[derive(Debug, Clone, Serialize)]
pub struct Refused {
    pub app: String,
    pub env: String,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    /// How many directories were rendered.
    pub checked: usize,
    pub unchanged: usize,
    pub changes: Vec<Planned>,
    pub refused: Vec<Refused>,
}

impl Plan {
    /// The directories left untouched, as a report (one file per directory's
    /// values.yaml, with the findings that stopped it) for the formats tools read.
    pub fn refusals(&self) -> crate::findings::Report {
        crate::findings::Report {
            files: self
                .refused
                .iter()
                .map(|r| crate::findings::FileReport {
                    path: crate::layout::AppDir::new(&r.app, &r.env).values(),
                    source: None,
                    findings: r.findings.clone(),
                })
                .collect(),
        }
    }

    /// The kinds of change across the fleet: `(file kind, field) -> how many
    /// directories`, e.g. `("deployment", "spec.template.spec.securityContext") -> 812`.
    pub fn kinds(&self) -> BTreeMap<(String, String), usize> {
        let mut out = BTreeMap::new();
        for p in &self.changes {
            let mut seen = BTreeSet::new();
            for c in &p.changes {
                let kind = c
                    .file
                    .split('-')
                    .next()
                    .unwrap_or(&c.file)
                    .trim_end_matches(".yaml");
                let keys: Vec<String> = if c.fields.is_empty() {
                    vec![format!("({})", c.change)]
                } else {
                    c.fields.clone()
                };
                for field in keys {
                    if seen.insert((kind.to_string(), field.clone())) {
                        *out.entry((kind.to_string(), field)).or_insert(0) += 1;
                    }
                }
            }
        }
        out
    }
}

/// Renders every stored directory (optionally of one app and/or environment) and plans
/// what would change.
pub fn plan(
    repo: &Repo,
    platform: &Platform,
    tip: ObjectId,
    app: Option<&str>,
    env: Option<&str>,
    actor: Option<&str>,
) -> Result<Plan> {
    let dirs = stored_dirs(repo, tip, app, env)?;
    // gix handles are per thread: read the values first, render in parallel after.
    let mut inputs = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let values = stored_values(repo, &dir)?;
        inputs.push((dir, values));
    }
    let hash = repo.git.object_hash();
    let outcomes: Vec<Outcome> = inputs
        .par_iter()
        .map(|(dir, values)| plan_one(platform, hash, dir, values.as_ref(), actor))
        .collect::<Result<_>>()?;
    let mut plan = Plan {
        checked: outcomes.len(),
        ..Plan::default()
    };
    for o in outcomes {
        match o {
            Outcome::Unchanged => plan.unchanged += 1,
            Outcome::Change(mut p) => {
                // Which fields changed, read only for the files that did.
                for c in &mut p.changes {
                    if let (Some(old), Some(Content::Bytes(new))) = (c.old, p.files.get(&c.file)) {
                        if let Ok(old) = trust::blob_bounded(repo, old)? {
                            c.fields = changed_fields(&old, new);
                        }
                    }
                }
                plan.changes.push(p)
            }
            Outcome::Refused(r) => plan.refused.push(r),
        }
    }
    Ok(plan)
}

enum Outcome {
    Unchanged,
    Change(Planned),
    Refused(Refused),
}

/// Plans one directory; also used again at commit time if the directory moved.
fn plan_one(
    platform: &Platform,
    hash: gix::hash::Kind,
    dir: &StoredDir,
    values: Option<&std::result::Result<Vec<u8>, u64>>,
    actor: Option<&str>,
) -> Result<Outcome> {
    let path = dir.app_dir().values();
    let values = match values {
        Some(Err(size)) => {
            return Ok(Outcome::Refused(Refused {
                app: dir.app.clone(),
                env: dir.env.clone(),
                findings: vec![Finding::error(
                    "rerender-values-too-large",
                    format!(
                        "values.yaml is {size} bytes, over the {} byte bound for stored files: not read",
                        trust::MAX_STORED_FILE
                    ),
                )
                .in_file(&path)],
            }))
        }
        Some(Ok(v)) => Some(v.as_slice()),
        None => None,
    };
    let Some(values) = values else {
        return Ok(Outcome::Refused(Refused {
            app: dir.app.clone(),
            env: dir.env.clone(),
            findings: vec![
                Finding::error("rerender-no-values", "no values.yaml to render from")
                    .in_file(&path),
            ],
        }));
    };
    let refuse = |findings| {
        Outcome::Refused(Refused {
            app: dir.app.clone(),
            env: dir.env.clone(),
            findings,
        })
    };
    if !platform.settings.environments.contains(&dir.env) {
        return Ok(refuse(vec![Finding::error(
            "rerender-unknown-env",
            format!("`{}` is not an environment of this platform", dir.env),
        )
        .in_file(&path)]));
    }
    let checked = check(
        platform,
        &Request {
            path: &path,
            bytes: values,
            env: &dir.env,
            tag: None,
            source_repo: None,
            actor,
        },
    )?;
    let (Some(rendering), true) = (&checked.rendering, checked.ok()) else {
        return Ok(refuse(
            checked
                .report
                .findings
                .into_iter()
                .filter(Finding::is_error)
                .collect(),
        ));
    };
    if rendering.app != dir.app {
        return Ok(refuse(vec![Finding::error(
            "rerender-wrong-app",
            format!(
                "values.yaml is for app `{}`, not `{}`",
                rendering.app, dir.app
            ),
        )
        .in_file(&path)]));
    }
    let mut files: Files = rendering
        .files
        .iter()
        .map(|(k, v)| (k.clone(), Content::Bytes(v.clone())))
        .collect();
    if let Some(id) = dir.files.get(hold::FILE) {
        files.insert(hold::FILE.to_string(), Content::Blob(*id));
    }
    let mut changes = Vec::new();
    for (name, content) in &files {
        let Content::Bytes(bytes) = content else {
            continue;
        };
        match dir.files.get(name) {
            None => changes.push(FileChange {
                file: name.clone(),
                change: "added",
                fields: Vec::new(),
                old: None,
            }),
            Some(old) => {
                let new = gix::objs::compute_hash(hash, gix::objs::Kind::Blob, bytes)
                    .map_err(git_err("hash a file"))?;
                if new != *old {
                    let manifest = name != layout::VALUES && name != layout::KUSTOMIZATION;
                    changes.push(FileChange {
                        file: name.clone(),
                        change: "modified",
                        fields: Vec::new(),
                        old: manifest.then_some(*old),
                    });
                }
            }
        }
    }
    for name in dir.files.keys() {
        if !files.contains_key(name) {
            changes.push(FileChange {
                file: name.clone(),
                change: "removed",
                fields: Vec::new(),
                old: None,
            });
        }
    }
    if changes.is_empty() {
        return Ok(Outcome::Unchanged);
    }
    let version = checked
        .accepted
        .as_ref()
        .and_then(|a| a.normalised.get("version"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok(Outcome::Change(Planned {
        app: dir.app.clone(),
        env: dir.env.clone(),
        version,
        changes,
        base: dir.tree,
        files,
    }))
}

/// Re-plans one directory against what the branch holds now (another deploy may have
/// landed since the plan was made): the files to commit, or `None` if nothing is left
/// to change or the values no longer pass.
pub fn replan(
    repo: &Repo,
    platform: &Platform,
    dir: &StoredDir,
    actor: Option<&str>,
) -> Result<Option<Files>> {
    let values = stored_values(repo, dir)?;
    match plan_one(
        platform,
        repo.git.object_hash(),
        dir,
        values.as_ref(),
        actor,
    )? {
        Outcome::Change(p) => Ok(Some(p.files)),
        Outcome::Unchanged | Outcome::Refused(_) => Ok(None),
    }
}

/// Who rerenders and why: the commit's actor (resolved by the caller) and message.
#[derive(Debug, Clone)]
pub struct Rerender {
    pub actor: String,
    pub message: Option<String>,
}

/// A directory rerendered and committed.
#[derive(Debug, Clone, Serialize)]
pub struct Committed {
    pub app: String,
    pub env: String,
    #[serde(serialize_with = "hex")]
    pub commit: ObjectId,
    /// How many files the plan changed in it.
    #[serde(skip)]
    pub files_changed: usize,
}

/// Lands the plan: one commit per directory (intent `rerender`), each through
/// `Repo::apply`. A directory that another deploy changed since the plan is rendered
/// again from what it holds now (and skipped if nothing is left to change). `committed`
/// hears of each commit as it lands, so a caller can report progress and record events
/// before the next one.
pub fn land(
    repo: &mut Repo,
    platform: &Platform,
    plan: &Plan,
    req: &Rerender,
    mut committed: impl FnMut(&Repo, &Committed),
) -> Result<Vec<Committed>> {
    let digest = trust::platform_digest(&platform.files);
    let mut landed = Vec::new();
    for planned in &plan.changes {
        let change = crate::repo::Change {
            app: planned.app.clone(),
            env: planned.env.clone(),
            intent: crate::repo::Intent::Rerender,
            version: planned.version.clone(),
            actor: req.actor.clone(),
            source: None,
            message: req.message.clone(),
            source_time: None,
            platform: digest.clone(),
            fix: false,
        };
        let outcome = repo.apply(&change, false, |repo, _tip, current| {
            let Some(current) = current else {
                return Ok(crate::repo::Plan::Write(planned.files.clone()));
            };
            if current.tree == planned.base {
                return Ok(crate::repo::Plan::Write(planned.files.clone()));
            }
            // Someone deployed this app since the plan: render what is there now.
            let dir = StoredDir {
                app: planned.app.clone(),
                env: planned.env.clone(),
                tree: current.tree,
                files: current.files.clone(),
            };
            Ok(match replan(repo, platform, &dir, Some(&req.actor))? {
                Some(files) => crate::repo::Plan::Write(files),
                None => crate::repo::Plan::Nothing,
            })
        })?;
        if let crate::repo::Outcome::Committed { commit, .. } = outcome {
            let done = Committed {
                app: planned.app.clone(),
                env: planned.env.clone(),
                commit,
                files_changed: planned.changes.len(),
            };
            committed(repo, &done);
            landed.push(done);
        }
    }
    Ok(landed)
}

fn hex<S: serde::Serializer>(id: &ObjectId, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(id)
}

/// A directory's `values.yaml`, read within the bound for stored files (`Err(size)`
/// over it).
fn stored_values(
    repo: &Repo,
    dir: &StoredDir,
) -> Result<Option<std::result::Result<Vec<u8>, u64>>> {
    dir.files
        .get(layout::VALUES)
        .map(|id| trust::blob_bounded(repo, *id))
        .transpose()
}

/// The fields in which two manifests differ, as dotted paths cut at four levels, so a
/// fleet-wide template change reads as a few lines rather than thousands.
fn changed_fields(before: &[u8], after: &[u8]) -> Vec<String> {
    let parse = |b: &[u8]| {
        std::str::from_utf8(b)
            .ok()
            .and_then(|t| crate::yaml::parse_stream(t, crate::yaml::Limits::MANIFESTS).ok())
            .and_then(|d| d.first().map(|d| crate::yaml::to_json(&d.root)))
    };
    let (Some(a), Some(b)) = (parse(before), parse(after)) else {
        return Vec::new();
    };
    let mut out = BTreeSet::new();
    diff(&a, &b, &mut Vec::new(), &mut out);
    out.into_iter().collect()
}

fn diff(a: &Value, b: &Value, path: &mut Vec<String>, out: &mut BTreeSet<String>) {
    const DEPTH: usize = 6;
    if a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) if path.len() < DEPTH => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                path.push(k.clone());
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => diff(p, q, path, out),
                    _ => {
                        out.insert(path.join("."));
                    }
                }
                path.pop();
            }
        }
        (Value::Array(x), Value::Array(y)) if path.len() < DEPTH && x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                path.push(i.to_string());
                diff(p, q, path, out);
                path.pop();
            }
        }
        _ => {
            out.insert(path.join("."));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_fields_name_where_manifests_differ() {
        let a = b"kind: Deployment\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n      - name: a\n        image: x:1\n";
        let b = b"kind: Deployment\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n      - name: a\n        image: x:1\n        securityContext: {runAsNonRoot: true}\n";
        assert_eq!(
            changed_fields(a, b),
            vec!["spec.template.spec.containers.0.securityContext"]
        );
    }
}
