//! The pipeline for Kubernetes manifests from any source (`validate`): read every
//! document of every file with positions, expand Lists, check each object against the
//! API schema of the compiled-in release (or its CustomResourceDefinition), then run the
//! platform's policies over all of them together, and report each finding at the file
//! and line of the field it is about.
//!
//! Every object keeps its identity from reading to output: the file, the document in
//! it, the item of a List, and its YAML node (for lines). Policies name the object a
//! finding is about by its index in their input (`lib.finding_at`), so a finding lands
//! on that object, in that file, whatever other objects share its kind and name, and
//! attaching costs nothing per finding (time stays linear in objects and findings).
//!
//! The policies see the objects one batch at a time: every object of a namespace is in
//! the same batch (the standard rules relate objects within a namespace: a workload and
//! its PodDisruptionBudget, NetworkPolicy and ServiceAccount), and small namespaces
//! share a batch. Batches are evaluated in parallel.
//!
//! Nothing an input holds makes the run fail: a document that is not YAML, a value of
//! the wrong shape, an object a policy cannot evaluate, each is a finding on its file
//! or object and the run goes on. An `Err` is a platform or usage problem only.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rayon::prelude::*;
use serde_json::{json, Value};

use super::crd::Crds;
use super::kube::{self, Issue, Scope};
use super::{apply_waivers, policy, Context};
use crate::error::{Error, Result};
use crate::findings::{FileReport, Finding, Report, Severity};
use crate::platform::Platform;
use crate::pointer::lookup;
use crate::yaml::{self, Node, NodeKind, Style};

/// One input: the path findings name it by, and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub path: &'a str,
    pub bytes: &'a [u8],
}

/// What a run of `validate` knows besides the manifests.
#[derive(Default)]
pub struct Options<'a> {
    /// For waivers and context-aware policies; absent fields make those rules silent.
    pub context: Context,
    /// Files of CustomResourceDefinitions whose schemas check custom resources.
    pub crds: Vec<Source<'a>>,
}

/// One Kubernetes object and where it came from.
struct Object {
    file: usize,
    value: Value,
    /// Its YAML node, for the line of any field a finding names.
    node: Node,
    resource: String,
}

/// At most this many objects share a policy evaluation, unless one namespace holds more.
const BATCH: usize = 256;

/// Validates manifests. Every input gets a `FileReport`, in input order.
pub fn validate(
    platform: &Platform,
    sources: &[Source<'_>],
    options: &Options<'_>,
) -> Result<Report> {
    let mut crds = load_crd_files(&options.crds)?;

    // Reading: each file on its own, in parallel.
    let patches = kustomize_patches(sources);
    let read: Vec<(FileReport, Vec<Object>)> = sources
        .par_iter()
        .enumerate()
        .map(|(i, s)| match patches.get(&clean_path(s.path)) {
            Some(listed_in) => patch_file(s, listed_in),
            None => read_file(i, s),
        })
        .collect();
    let mut files = Vec::with_capacity(read.len());
    let mut objects = Vec::new();
    for (report, objs) in read {
        files.push(report);
        objects.extend(objs);
    }

    // Definitions among the manifests check the custom resources beside them.
    let mut crd_findings = Vec::new();
    // name -> (file, line, spec) of the definition in force so far, for the warning
    // when a later, different one replaces it. Copies of one definition (an install
    // manifest per environment) are the same either way and pass without a word.
    let mut defined: HashMap<&str, (usize, u32, Option<&Value>)> = HashMap::new();
    for o in &objects {
        if is_crd(&o.value) {
            if let Some(name) = lookup(&o.value, "/metadata/name").and_then(Value::as_str) {
                let line = o.node.pos.line;
                let spec = o.value.get("spec");
                if let Some(&(file, earlier, _)) = defined.get(name).filter(|d| d.2 != spec) {
                    crd_findings.push((
                        o.file,
                        at_object(
                            &sources[o.file],
                            o,
                            Issue::warning(
                                "kube-crd-twice",
                                "/metadata/name",
                                format!(
                                    "the CustomResourceDefinition {name} is also defined, differently, at {}:{earlier}; this later one is used, as it would be by `kubectl apply` in this order",
                                    sources[file].path
                                ),
                            ),
                        ),
                    ));
                }
                defined.insert(name, (o.file, line, spec));
            }
            if let Err(e) = crds.add(&o.value) {
                crd_findings.push((
                    o.file,
                    at_object(
                        &sources[o.file],
                        o,
                        Issue::error("kube-crd", e.pointer, e.message),
                    ),
                ));
            }
        }
    }

    // Schemas: each object on its own, in parallel.
    let schema_findings: Vec<Vec<Finding>> = objects
        .par_iter()
        .map(|o| {
            check_object(&crds, o)
                .into_iter()
                .map(|issue| at_object(&sources[o.file], o, issue))
                .collect()
        })
        .collect();
    let mut by_file: Vec<Vec<Finding>> = vec![Vec::new(); files.len()];
    for (o, found) in objects.iter().zip(schema_findings) {
        by_file[o.file].extend(found);
    }

    let policy_findings = evaluate_policies(platform, sources, &objects, &crds, &options.context)?;
    // Freeing every object's JSON and YAML tree was a tenth of a large run, on the main
    // thread after everything else; nothing needs to wait for it (a CLI process exits
    // without it).
    rayon::spawn(move || drop(objects));
    for (file, f) in crd_findings.into_iter().chain(policy_findings) {
        by_file[file].push(f);
    }
    for (report, found) in files.iter_mut().zip(by_file) {
        report.findings.extend(found);
        report.normalise();
    }
    Ok(Report { files })
}

fn is_crd(v: &Value) -> bool {
    v.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition")
        && v.get("apiVersion").and_then(Value::as_str) == Some("apiextensions.k8s.io/v1")
}

/// Reads the `--crd` files. A file there that cannot be read or holds a definition that
/// cannot be used is a usage error: the user pointed at it to be used.
fn load_crd_files(sources: &[Source<'_>]) -> Result<Crds> {
    let mut crds = Crds::default();
    for s in sources {
        let text = std::str::from_utf8(s.bytes)
            .map_err(|e| Error::usage(format!("{}: not UTF-8 text ({e})", s.path)))?;
        for doc in yaml::parse_documents(text, yaml::Limits::MANIFESTS) {
            let doc = doc.map_err(|e| {
                Error::usage(format!(
                    "{}:{}:{}: {}",
                    s.path, e.pos.line, e.pos.column, e.message
                ))
            })?;
            let value = yaml::manifest_to_json(&doc.root);
            let items: Vec<(&Value, &Node)> = match list_items(&value, &doc.root) {
                Some(items) => items,
                None => vec![(&value, &doc.root)],
            };
            for (v, node) in items {
                if is_crd(v) {
                    crds.add(v).map_err(|e| {
                        let pos = node.locate(&e.pointer).1;
                        Error::usage(format!(
                            "{}:{}:{}: {}",
                            s.path, pos.line, pos.column, e.message
                        ))
                    })?;
                }
            }
        }
    }
    Ok(crds)
}

/// The items of a List (`kind: List`, or a typed list such as `RoleList` that `kubectl
/// apply` takes), with their nodes; None when the object is not a list.
fn list_items<'a>(value: &'a Value, node: &'a Node) -> Option<Vec<(&'a Value, &'a Node)>> {
    let kind = value.get("kind").and_then(Value::as_str)?;
    if !(kind == "List" || (kind.ends_with("List") && value.get("items").is_some())) {
        return None;
    }
    let values = value.get("items").and_then(Value::as_array)?;
    let NodeKind::Mapping(entries) = &node.kind else {
        return None;
    };
    let (_, items_node) = entries.iter().find(|(k, _)| k.text == "items")?;
    let NodeKind::Sequence(nodes) = &items_node.kind else {
        return None;
    };
    Some(values.iter().zip(nodes.iter()).collect())
}

/// "Kind/name" of an object: the same spelling as policies/lib.rego's `resource`, so
/// every finding on one object names it alike.
pub(crate) fn resource_of(object: &Value) -> String {
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("Unknown");
    let name = lookup(object, "/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .or_else(|| {
            lookup(object, "/metadata/generateName")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
        })
        .unwrap_or("unnamed");
    format!("{kind}/{name}")
}

/// Kustomize's own file names: build instructions, not objects, whatever they hold.
fn is_kustomization(path: &str) -> bool {
    matches!(
        path.rsplit('/').next(),
        Some("kustomization.yaml" | "kustomization.yml" | "Kustomization")
    )
}

/// The patch files the kustomizations among the inputs list (`patches[].path`,
/// `patchesStrategicMerge`, `patchesJson6902[].path`), by cleaned path, each with the
/// kustomization that lists it. A patch is a fragment that Kustomize lays over an
/// object: checked on its own it would be "missing" every field it does not change.
fn kustomize_patches(sources: &[Source<'_>]) -> HashMap<String, String> {
    let mut patches = HashMap::new();
    for s in sources.iter().filter(|s| is_kustomization(s.path)) {
        let Ok(text) = std::str::from_utf8(s.bytes) else {
            continue;
        };
        let dir = s.path.rsplit_once('/').map_or("", |(d, _)| d);
        for doc in yaml::parse_documents(text, yaml::Limits::MANIFESTS)
            .into_iter()
            .flatten()
        {
            let k = yaml::to_json(&doc.root);
            let listed = |field: &str| k.get(field).and_then(Value::as_array).into_iter().flatten();
            let paths = listed("patches")
                .chain(listed("patchesJson6902"))
                .filter_map(|p| p.get("path").and_then(Value::as_str))
                // An inline patch is YAML text, not a file name.
                .chain(
                    listed("patchesStrategicMerge")
                        .filter_map(Value::as_str)
                        .filter(|p| !p.contains('\n')),
                );
            for p in paths {
                let joined = if dir.is_empty() {
                    p.to_string()
                } else {
                    format!("{dir}/{p}")
                };
                patches.insert(clean_path(&joined), s.path.to_string());
            }
        }
    }
    patches
}

/// A path with `.` and `x/..` steps taken out, as text (the files were read already).
fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    let cleaned = parts.join("/");
    if path.starts_with('/') {
        format!("/{cleaned}")
    } else {
        cleaned
    }
}

/// A Kustomize patch among the inputs: said so, and not checked as an object.
fn patch_file(source: &Source<'_>, listed_in: &str) -> (FileReport, Vec<Object>) {
    let mut report = FileReport::new(source.path, None);
    report.findings.push(
        Finding::warning(
            "manifest-kustomize-patch",
            format!("a Kustomize patch ({listed_in} lists it): a fragment of an object, not checked on its own"),
        )
        .help("validate what Kustomize builds: `kustomize build DIR | gitops-render validate -`")
        .in_file(source.path),
    );
    (report, Vec::new())
}

fn read_file(index: usize, source: &Source<'_>) -> (FileReport, Vec<Object>) {
    let path = source.path;
    let mut objects = Vec::new();
    // A rendered app directory holds our values.yaml beside the manifests, and a
    // Kustomize tree its kustomization.yaml: neither is an API object.
    if source
        .bytes
        .starts_with(crate::render::VALUES_HEADER.as_bytes())
        || is_kustomization(path)
    {
        return (FileReport::new(path, None), objects);
    }
    let text = match std::str::from_utf8(source.bytes) {
        Ok(t) => t,
        Err(e) => {
            let mut report = FileReport::new(path, None);
            report.findings.push(
                Finding::error(
                    "yaml-encoding",
                    format!("invalid UTF-8 at byte {}", e.valid_up_to()),
                )
                .in_file(path),
            );
            return (report, objects);
        }
    };
    let mut report = FileReport::new(path, Some(Arc::from(text)));
    let mut documents = 0usize;
    let mut failed = false;
    for doc in yaml::parse_documents(text, yaml::Limits::MANIFESTS) {
        let doc = match doc {
            Ok(d) => d,
            Err(e) => {
                failed = true;
                report
                    .findings
                    .push(Finding::error(e.rule(), e.message.clone()).at(path, e.pos));
                continue;
            }
        };
        let value = yaml::manifest_to_json(&doc.root);
        if value.is_null() {
            // Helm and Kustomize leave empty documents between `---`s; so do people.
            continue;
        }
        documents += 1;
        // Kustomize's own files (kustomization.yaml) are build instructions, not
        // objects the API server sees.
        if value
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v.starts_with("kustomize.config.k8s.io/"))
        {
            continue;
        }
        if !value.is_object() {
            report.findings.push(
                Finding::error(
                    "manifest-not-object",
                    format!(
                        "a document must be a Kubernetes object (a mapping), not {}",
                        shape(&value)
                    ),
                )
                .at(path, doc.root.pos),
            );
            continue;
        }
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let is_list = kind == "List" || (kind.ends_with("List") && value.get("items").is_some());
        if !is_list {
            objects.push(Object {
                file: index,
                resource: resource_of(&value),
                value,
                node: doc.root,
            });
            continue;
        }
        // A List (`kubectl get -o yaml`, or a typed list such as RoleList) holds its
        // objects under `items`; findings go to the items, never to the wrapper.
        let items = value.get("items").and_then(Value::as_array);
        if items.is_none_or(Vec::is_empty) {
            let at = doc.root.locate("/items").1;
            report.findings.push(
                Finding::warning(
                    "manifest-empty-list",
                    format!("this {kind} has no items: nothing in it would be applied"),
                )
                .at(path, at)
                .help("list the objects under `items`, or remove the document"),
            );
            if value
                .get("items")
                .is_some_and(|i| !i.is_array() && !i.is_null())
            {
                report.findings.push(
                    Finding::error(
                        "kube-schema",
                        format!(
                            "items: a {kind} holds a list of objects, not {}",
                            shape(&value["items"])
                        ),
                    )
                    .at(path, at),
                );
            }
            continue;
        }
        let Value::Object(mut map) = value else {
            continue;
        };
        let Some(Value::Array(item_values)) = map.remove("items") else {
            continue;
        };
        let NodeKind::Mapping(entries) = doc.root.kind else {
            continue;
        };
        let Some((_, items_node)) = entries.into_iter().find(|(k, _)| k.text == "items") else {
            continue;
        };
        let NodeKind::Sequence(item_nodes) = items_node.kind else {
            continue;
        };
        for (item, node) in item_values.into_iter().zip(item_nodes) {
            if !item.is_object() {
                report.findings.push(
                    Finding::error(
                        "manifest-not-object",
                        format!(
                            "an item of a {kind} must be a Kubernetes object (a mapping), not {}",
                            shape(&item)
                        ),
                    )
                    .at(path, node.pos),
                );
                continue;
            }
            objects.push(Object {
                file: index,
                resource: resource_of(&item),
                value: item,
                node,
            });
        }
    }
    if documents == 0 && !failed {
        report.findings.push(
            Finding::warning(
                "manifest-empty",
                "the file holds no Kubernetes objects (it is empty, or only comments)",
            )
            .in_file(path)
            .help("remove the file, or check that the tool that wrote it did not fail"),
        );
    }
    (report, objects)
}

fn shape(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The schema checks of one object: the built-in kind's, its definition's, or a
/// warning that it has neither; and what a YAML 1.1 reader would make of it.
fn check_object(crds: &Crds, o: &Object) -> Vec<Issue> {
    let api_version = o
        .value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = o.value.get("kind").and_then(Value::as_str).unwrap_or("");
    let mut issues = match crds.check(&o.value, api_version, kind) {
        Some(issues) if kube::builtin(api_version, kind).is_none() => issues,
        _ => kube::check(&o.value),
    };
    if kube::builtin(api_version, kind).is_some() {
        yaml11_strings(&o.node, api_version, kind, &mut issues);
    }
    issues
}

/// Plain scalars that kubectl and Helm (YAML 1.1) read as booleans or numbers, where
/// the API takes a string: `FEATURE: yes` in a ConfigMap is a string here and `true`
/// to kubectl, and the API server refuses a boolean in `data`. A non-string the schema
/// walk found where a string belongs is reported again in the words of the file (`0x1F`
/// rather than the number 31), with its fix, in place of the walk's report.
fn yaml11_strings(node: &Node, api_version: &str, kind: &str, issues: &mut Vec<Issue>) {
    let is_string_error =
        |i: &Issue| i.rule == "kube-schema" && i.message.contains("expected a string");
    let any_string_error = issues.iter().any(is_string_error);
    let mut found = Vec::new();
    walk_scalars(node, &mut Vec::new(), &mut |path, text| {
        let (rule, message) = match yaml::yaml11_reading(text) {
            Some(reading) => (
                "yaml-ambiguous-scalar",
                format!("`{text}` is {reading} to kubectl and Helm (YAML 1.1), though a string here, and the API takes a string: the API server refuses it"),
            ),
            None if any_string_error => {
                let reading = match yaml::core_scalar(text, Style::Plain, None) {
                    Value::Bool(_) => "a boolean",
                    Value::Number(_) => "a number",
                    _ => return,
                };
                ("kube-schema", format!("`{text}` is {reading}, where the API takes a string"))
            }
            None => return,
        };
        let pointer = pointer_of(path);
        if kube::expects_string(api_version, kind, &pointer) {
            found.push(Issue::error(rule, pointer, message).help(format!("quote it: \"{text}\"")));
        }
    });
    if any_string_error {
        issues.retain(|i| !(is_string_error(i) && found.iter().any(|f| f.pointer == i.pointer)));
    }
    issues.extend(found);
}

/// One step from an object's root to a node: a mapping key or a sequence index.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Visits every plain scalar with the path to it. The path is a list of steps, not a
/// pointer string: nearly every scalar is unambiguous, and spelling a pointer for each
/// of them was a tenth of reading a file.
fn walk_scalars<'a>(
    node: &'a Node,
    path: &mut Vec<Step<'a>>,
    visit: &mut impl FnMut(&[Step<'a>], &str),
) {
    match &node.kind {
        NodeKind::Scalar {
            text,
            style: Style::Plain,
            tag: None,
        } => visit(path, text),
        NodeKind::Scalar { .. } => {}
        NodeKind::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                walk_scalars(item, path, visit);
                path.pop();
            }
        }
        NodeKind::Mapping(entries) => {
            for (k, v) in entries {
                path.push(Step::Key(&k.text));
                walk_scalars(v, path, visit);
                path.pop();
            }
        }
    }
}

/// The JSON pointer of a path.
fn pointer_of(path: &[Step<'_>]) -> String {
    let mut pointer = String::new();
    for step in path {
        pointer.push('/');
        match step {
            Step::Key(k) => pointer.push_str(&crate::pointer::escape(k)),
            Step::Index(i) => pointer.push_str(&i.to_string()),
        }
    }
    pointer
}

/// An issue at its place in the object's file.
fn at_object(source: &Source<'_>, o: &Object, issue: Issue) -> Finding {
    let (key, value) = o.node.locate(&issue.pointer);
    let pos = if issue.at_key { key } else { value };
    let f = if issue.is_error {
        Finding::error(issue.rule, issue.message)
    } else {
        Finding::warning(issue.rule, issue.message)
    };
    let f = f.at(source.path, pos).resource(o.resource.clone());
    match issue.help {
        Some(h) => f.help(h),
        None => f,
    }
}

// ---------------------------------------------------------------------------------
// Policies.

/// The scope of every kind this run knows, for `lib.scope`: `{"<group>/<Kind>": ...}`.
fn scopes(crds: &Crds) -> Value {
    let mut map = serde_json::Map::new();
    for k in kube::builtin_kinds() {
        let scope = match k.scope {
            Scope::Namespaced => "Namespaced",
            Scope::Cluster => "Cluster",
            Scope::Subresource => continue,
        };
        map.insert(format!("{}/{}", k.group, k.kind), json!(scope));
    }
    for (group, kind, scope) in crds.scopes() {
        let scope = if scope == Scope::Cluster {
            "Cluster"
        } else {
            "Namespaced"
        };
        map.insert(format!("{group}/{kind}"), json!(scope));
    }
    Value::Object(map)
}

/// Groups objects into batches that never split a namespace.
fn batches(objects: &[Object]) -> Vec<Vec<usize>> {
    let mut by_namespace: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, o) in objects.iter().enumerate() {
        let ns = lookup(&o.value, "/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        by_namespace.entry(ns).or_default().push(i);
    }
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for (_, members) in by_namespace {
        if !current.is_empty() && current.len() + members.len() > BATCH {
            out.push(std::mem::take(&mut current));
        }
        current.extend(members);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Runs the policies over every object; returns (file index, finding) pairs.
fn evaluate_policies(
    platform: &Platform,
    sources: &[Source<'_>],
    objects: &[Object],
    crds: &Crds,
    context: &Context,
) -> Result<Vec<(usize, Finding)>> {
    if objects.is_empty() {
        return Ok(Vec::new());
    }
    let scopes = scopes(crds);
    let context_json = json!({
        "app": context.app,
        "env": context.env,
        "team": context.team,
        "source_repo": context.source_repo,
        "actor": context.actor,
    });
    let results: Vec<Result<Vec<(usize, Finding)>>> = batches(objects)
        .par_iter()
        .map(|batch| {
            evaluate_batch(
                platform,
                sources,
                objects,
                batch,
                &scopes,
                &context_json,
                context,
            )
        })
        .collect();
    let mut out = Vec::new();
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}

fn evaluate_batch(
    platform: &Platform,
    sources: &[Source<'_>],
    objects: &[Object],
    batch: &[usize],
    scopes: &Value,
    context_json: &Value,
    context: &Context,
) -> Result<Vec<(usize, Finding)>> {
    let input = |members: &[usize]| {
        json!({
            "values": {},
            "manifests": members.iter().map(|&i| objects[i].value.clone()).collect::<Vec<_>>(),
            "context": context_json,
            "scopes": scopes,
        })
    };
    let policies = platform.policies()?;
    let mut out = Vec::new();
    match policies.evaluate(input(batch)) {
        Ok(hits) => attach_hits(platform, sources, objects, batch, hits, context, &mut out)?,
        // A policy that fails on some input (a builtin given a value of a shape it
        // cannot take) must not cost the other objects their verdict: evaluate them
        // one by one, and report the object that fails.
        Err(_) => {
            for &i in batch {
                match policies.evaluate(input(&[i])) {
                    Ok(hits) => {
                        attach_hits(platform, sources, objects, &[i], hits, context, &mut out)?
                    }
                    Err(e) => {
                        let o = &objects[i];
                        out.push((
                            o.file,
                            at_object(
                                &sources[o.file],
                                o,
                                Issue::error(
                                    "policy-error",
                                    "",
                                    format!(
                                        "the policies could not be evaluated on this object: {}",
                                        e.message
                                    ),
                                ),
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Attaches policy hits to the objects they name, at the line of the field they name.
/// Waivers are applied first; expired-waiver notices go to the first object's file.
fn attach_hits(
    platform: &Platform,
    sources: &[Source<'_>],
    objects: &[Object],
    members: &[usize],
    hits: Vec<policy::Hit>,
    context: &Context,
    out: &mut Vec<(usize, Finding)>,
) -> Result<()> {
    let (hits, notices) = apply_waivers(
        &platform.waivers,
        context.app.as_deref(),
        context.env.as_deref(),
        platform.today,
        hits,
    );
    let first = &objects[members[0]];
    for n in notices {
        out.push((first.file, n.in_file(sources[first.file].path)));
    }
    // Policies that name objects only by `resource` (written before `finding_at`):
    // an index by name, built once per batch and only when needed.
    let mut by_resource: Option<std::collections::HashMap<&str, usize>> = None;
    for hit in hits {
        let target = match hit.object.and_then(|i| members.get(i)) {
            Some(&i) => Some(i),
            None => hit.resource.as_deref().and_then(|r| {
                by_resource
                    .get_or_insert_with(|| {
                        let mut m = std::collections::HashMap::new();
                        for &i in members.iter().rev() {
                            m.insert(objects[i].resource.as_str(), i);
                        }
                        m
                    })
                    .get(r)
                    .copied()
            }),
        };
        let f = match hit.severity {
            Severity::Error => Finding::error(hit.rule, hit.message),
            Severity::Warning => Finding::warning(hit.rule, hit.message),
        };
        match target {
            Some(i) => {
                let o = &objects[i];
                let pointer = hit.path.as_deref().unwrap_or("/metadata/name");
                let pos = o.node.locate(pointer).1;
                let mut f = f.at(sources[o.file].path, pos);
                f.resource = hit.resource.or_else(|| Some(o.resource.clone()));
                out.push((o.file, f));
            }
            // About the run, not one object (the context: an unknown team).
            None => {
                let mut f = f.in_file(sources[first.file].path);
                f.resource = hit.resource;
                out.push((first.file, f));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_never_split_a_namespace() {
        let mk = |ns: &str| Object {
            file: 0,
            value: json!({"metadata": {"namespace": ns}}),
            node: Node {
                pos: Default::default(),
                kind: NodeKind::Sequence(vec![]),
            },
            resource: String::new(),
        };
        let mut objects: Vec<Object> = (0..300).map(|_| mk("big")).collect();
        objects.extend((0..10).map(|i| mk(&format!("n{i}"))));
        let b = batches(&objects);
        let big: Vec<_> = b.iter().filter(|b| b.contains(&0)).collect();
        assert_eq!(big.len(), 1);
        assert_eq!(big[0].len(), 300);
        assert_eq!(b.iter().map(Vec::len).sum::<usize>(), 310);
    }
}
