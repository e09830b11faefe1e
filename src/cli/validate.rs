//! `gitops-render validate MANIFESTS...`: the API schema and policy checks on Kubernetes
//! YAML from any source (Helm output, Kustomize builds, hand-written files), with every
//! finding at its file and line.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use super::{emit, inputs, Globals};
use crate::error::Result;
use crate::findings::{FileReport, Finding, Report, Severity};
use crate::output::Format;
use crate::validate::{kube, policy_verdict, Context};
use crate::yaml::{self, Positions};

/// Check existing Kubernetes manifests against the API schema and the policies.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Manifest files or directories of them (`-` reads standard input).
    #[arg(required = true, value_name = "MANIFESTS")]
    manifests: Vec<PathBuf>,

    /// The app these manifests belong to, for waivers and app-level policies.
    #[arg(long, value_name = "APP")]
    app: Option<String>,

    /// The environment, for waivers and environment-level policies.
    #[arg(long, value_name = "ENV")]
    env: Option<String>,

    /// The owning team, for team-level policies (registries, hosts).
    #[arg(long, value_name = "TEAM")]
    team: Option<String>,

    /// How to print findings and the result: text for people; json, sarif, junit or
    /// github (workflow commands) for tools.
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    output: Format,
}

/// One object and where it sits.
struct Located {
    file: usize,
    object: Value,
    positions: Positions,
}

pub fn run(globals: &Globals, args: Args) -> Result<i32> {
    let platform = globals.platform()?;
    let inputs = inputs::read_all(&args.manifests)?;
    let mut files = Vec::new();
    let mut objects: Vec<Located> = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        // A rendered app directory holds our values.yaml beside the manifests: not an API
        // object, so not something to validate.
        if input
            .bytes
            .starts_with(crate::render::VALUES_HEADER.as_bytes())
        {
            files.push(FileReport::new(&input.path, None));
            continue;
        }
        let text = match std::str::from_utf8(&input.bytes) {
            Ok(t) => t,
            Err(e) => {
                let mut report = FileReport::new(&input.path, None);
                report.findings.push(
                    Finding::error(
                        "yaml-encoding",
                        format!("invalid UTF-8 at byte {}", e.valid_up_to()),
                    )
                    .in_file(&input.path),
                );
                files.push(report);
                continue;
            }
        };
        let mut report = FileReport::new(&input.path, Some(Arc::from(text)));
        match yaml::parse_stream(text, yaml::Limits::MANIFESTS) {
            Err(e) => report
                .findings
                .push(Finding::error(e.rule(), e.message.clone()).at(&input.path, e.pos)),
            Ok(docs) => {
                for doc in docs {
                    let object = yaml::to_json(&doc.root);
                    if object.is_null() {
                        continue;
                    }
                    let positions = Positions::of(&doc.root);
                    // Kustomize's own files (kustomization.yaml) are build instructions,
                    // not objects the API server sees.
                    let api_version = object
                        .get("apiVersion")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if api_version.starts_with("kustomize.config.k8s.io/") {
                        continue;
                    }
                    if !object.is_object() {
                        report.findings.push(
                            Finding::error("kube-schema", "a manifest must be a mapping")
                                .at(&input.path, doc.root.pos),
                        );
                        continue;
                    }
                    // A List (kubectl get -o yaml) holds its objects under `items`.
                    let is_list = object.get("kind").and_then(Value::as_str) == Some("List");
                    if is_list {
                        if let Some(items) = object.get("items").and_then(Value::as_array) {
                            for (i, item) in items.iter().enumerate() {
                                let sub = positions_under(&doc.root, i);
                                objects.push(Located {
                                    file: index,
                                    object: item.clone(),
                                    positions: sub,
                                });
                            }
                        }
                        continue;
                    }
                    objects.push(Located {
                        file: index,
                        object,
                        positions,
                    });
                }
            }
        }
        files.push(report);
    }

    for o in &objects {
        let path = &inputs[o.file].path;
        for issue in kube::check(&o.object) {
            let pos = if issue.at_key {
                o.positions.key(&issue.pointer)
            } else {
                o.positions.value(&issue.pointer)
            };
            let f = if issue.is_error {
                Finding::error(issue.rule, issue.message)
            } else {
                Finding::warning(issue.rule, issue.message)
            };
            files[o.file]
                .findings
                .push(f.at(path, pos).resource(resource_of(&o.object)));
        }
    }

    if !objects.is_empty() {
        let context = Context {
            app: args.app.clone(),
            env: args.env.clone(),
            team: args.team.clone(),
            source_repo: None,
            actor: None,
        };
        let all: Vec<&Value> = objects.iter().map(|o| &o.object).collect();
        let (hits, notices) = policy_verdict(&platform, &serde_json::json!({}), &all, &context)?;
        for hit in hits {
            // Attach the hit to the object it names, at its metadata.name line.
            let target = hit
                .resource
                .as_deref()
                .and_then(|r| objects.iter().find(|o| resource_of(&o.object) == r))
                .unwrap_or(&objects[0]);
            let path = &inputs[target.file].path;
            let pos = target.positions.value("/metadata/name");
            let f = match hit.severity {
                Severity::Error => Finding::error(hit.rule, hit.message),
                Severity::Warning => Finding::warning(hit.rule, hit.message),
            };
            let mut f = f.at(path, pos);
            f.resource = hit.resource;
            files[target.file].findings.push(f);
        }
        for n in notices {
            files[0].findings.push(n.in_file(&inputs[0].path));
        }
    }
    for f in &mut files {
        f.normalise();
    }
    Ok(emit(globals, &Report { files }, args.output))
}

fn resource_of(object: &Value) -> String {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("?");
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    format!("{kind}/{name}")
}

/// Positions of `items[i]` of a List, re-rooted so pointers into the item resolve.
fn positions_under(root: &yaml::Node, i: usize) -> Positions {
    if let yaml::NodeKind::Mapping(entries) = &root.kind {
        if let Some((
            _,
            yaml::Node {
                kind: yaml::NodeKind::Sequence(items),
                ..
            },
        )) = entries.iter().find(|(k, _)| k.text == "items")
        {
            if let Some(item) = items.get(i) {
                return Positions::of(item);
            }
        }
    }
    Positions::of(root)
}
