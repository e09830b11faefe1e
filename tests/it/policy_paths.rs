//! The policies are evaluated by regorus's interpreter, asked for one rule that gathers
//! every `deny` and `warn`; regorus's compiled form (its register VM) was measured as
//! the other candidate. Before that they were evaluated by the
//! interpreter on the whole `data.gitops` tree. A faster verdict is worth nothing if it
//! is a different verdict: this runs every input the project has through all three
//! evaluators and requires the one in use to give the findings the whole-tree query gave
//! (and says where regorus's compiled form does not):
//!
//! - every values fixture (`tests/fixtures/values`) and example, in every environment,
//!   from the team's own source repository, from a foreign one and from none;
//! - the hostile-string corpus of `tests/it/injection.rs`, in every string field;
//! - manifests as `validate` sees them (no values), including the multi-document stream
//!   of the `validate` test;
//! - every rendered object of the example web service with each leaf removed, and with
//!   each leaf replaced by a value of another kind: the inputs that make the rules fire.

use std::collections::BTreeSet;

use gitops_render::check::{check, Request};
use gitops_render::platform::Platform;
use gitops_render::validate::policy::{Evaluator, Hit};
use gitops_render::validate::{policy_input, Context};
use gitops_render::yaml;
use rayon::prelude::*;
use serde_json::{json, Value};

use crate::common::hostile;

const EVALUATORS: [Evaluator; 3] = [
    Evaluator::Compiled,
    Evaluator::Interpreter,
    Evaluator::WholeTree,
];

/// One input with a label saying where it came from, for the failure message.
struct Case {
    label: String,
    input: Value,
}

fn values_files() -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in [
        "tests/fixtures/values/good",
        "tests/fixtures/values/bad",
        "examples",
    ] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path);
            }
        }
    }
    out.sort();
    assert!(out.len() >= 38, "the fixtures are where they were");
    out
}

/// The policy input `check` would build, if the values get that far.
fn checked_input(
    platform: &Platform,
    bytes: &[u8],
    env: &str,
    source_repo: Option<&str>,
) -> Option<(Value, Vec<Value>)> {
    let checked = check(
        platform,
        &Request {
            path: "values.yaml",
            bytes,
            env,
            tag: None,
            source_repo,
            actor: Some("ci@payments"),
        },
    )
    .expect("no fixture breaks the platform");
    let accepted = checked.accepted?;
    let objects: Vec<Value> = checked
        .rendering?
        .manifests
        .into_iter()
        .map(|m| m.object)
        .collect();
    let context = Context {
        app: Some(accepted.app.clone()),
        env: Some(accepted.env.clone()),
        team: Some(accepted.team.clone()),
        source_repo: source_repo.map(str::to_string),
        actor: Some("ci@payments".into()),
    };
    let refs: Vec<&Value> = objects.iter().collect();
    Some((policy_input(&accepted.effective, &refs, &context), objects))
}

/// As `validate` builds it: manifests only.
fn validate_input(objects: &[Value], app: Option<&str>, env: Option<&str>) -> Value {
    let refs: Vec<&Value> = objects.iter().collect();
    let context = Context {
        app: app.map(str::to_string),
        env: env.map(str::to_string),
        ..Context::default()
    };
    policy_input(&json!({}), &refs, &context)
}

fn leaves(v: &Value, prefix: String, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                leaves(
                    child,
                    format!("{prefix}/{}", gitops_render::pointer::escape(k)),
                    out,
                );
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, child) in a.iter().enumerate() {
                leaves(child, format!("{prefix}/{i}"), out);
            }
        }
        other => out.push((prefix, other.clone())),
    }
}

/// Removes what `pointer` names from `root`.
fn remove(root: &mut Value, pointer: &str) {
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    let last = last.replace("~1", "/").replace("~0", "~");
    match root.pointer_mut(parent) {
        Some(Value::Object(m)) => {
            m.remove(&last);
        }
        Some(Value::Array(a)) => {
            a.remove(last.parse::<usize>().unwrap());
        }
        _ => {}
    }
}

/// A value of another kind, or the same kind with a value a rule may refuse.
fn other_kind(v: &Value) -> Value {
    match v {
        Value::Bool(b) => Value::Bool(!b),
        Value::Number(n) if n.as_i64() == Some(0) => json!(1),
        Value::Number(_) => json!(0),
        Value::String(s) if s.contains('/') => json!("docker.io/library/nginx:latest"),
        Value::String(_) => json!("latest"),
        Value::Null => json!(true),
        _ => Value::Null,
    }
}

fn corpus(platform: &Platform) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut rendered = Vec::new();
    for path in values_files() {
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        for env in &platform.settings.environments {
            for source in [None, Some("acme/payments-api"), Some("evil/payments-api")] {
                if let Some((input, objects)) = checked_input(platform, &bytes, env, source) {
                    cases.push(Case {
                        label: format!("{name} in {env} from {source:?}"),
                        input,
                    });
                    if source.is_none() && path.starts_with(env!("CARGO_MANIFEST_DIR")) {
                        rendered.push((format!("{name} in {env}"), env.clone(), objects));
                    }
                }
            }
        }
    }

    let fields = [
        "app",
        "team",
        "image",
        "version",
        "secrets",
        "ingress.host",
        "health.path",
        "env.value",
        "env.key",
    ];
    for field in fields {
        for value in hostile::HOSTILE {
            let text = hostile::values(field, value);
            if let Some((input, _)) = checked_input(platform, text.as_bytes(), "prod", None) {
                cases.push(Case {
                    label: format!("{field} = {value:?}"),
                    input,
                });
            }
        }
    }

    // The stream of the `validate` test in tests/it/check.rs: a ConfigMap, a Deployment
    // with nothing hardened, an old Ingress and a kind we have no schema for.
    let stream = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\ndata: {a: b}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers:\n        - name: web\n          image: nginx:1.27\n          imagePullPolicyy: Always\n---\napiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: old}\n---\napiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: app}\n";
    let objects: Vec<Value> = yaml::parse_stream(stream, yaml::Limits::MANIFESTS)
        .unwrap()
        .iter()
        .map(|d| yaml::to_json(&d.root))
        .collect();
    for (app, env) in [(None, None), (Some("payments-api"), Some("prod"))] {
        cases.push(Case {
            label: format!("the validate stream for {app:?}/{env:?}"),
            input: validate_input(&objects, app, env),
        });
    }

    for (label, env, objects) in &rendered {
        cases.push(Case {
            label: format!("{label}, validated"),
            input: validate_input(objects, Some("payments-api"), Some(env)),
        });
        // Mutations of the richest rendering (the web service: Deployment, Service,
        // Ingress, NetworkPolicy, ...) in one environment: enough to fire the rules
        // without multiplying the same inputs by every example and environment.
        if env != "prod" || !label.starts_with("payments-api.yaml") {
            continue;
        }
        for (i, object) in objects.iter().enumerate() {
            let mut points = Vec::new();
            leaves(object, String::new(), &mut points);
            for (pointer, leaf) in points {
                for removed in [true, false] {
                    let mut changed = objects.clone();
                    if removed {
                        remove(&mut changed[i], &pointer);
                    } else {
                        *changed[i].pointer_mut(&pointer).unwrap() = other_kind(&leaf);
                    }
                    cases.push(Case {
                        label: format!(
                            "{label}, object {i}: {pointer} {}",
                            if removed { "removed" } else { "changed" }
                        ),
                        input: validate_input(&changed, Some("payments-api"), Some(env)),
                    });
                }
            }
        }
    }
    cases
}

#[test]
fn every_evaluator_gives_identical_findings_on_every_input() {
    let platform = Platform::resolve(None).unwrap();
    let cases = corpus(&platform);
    // In parallel: three evaluators on over a thousand inputs is minutes on one core.
    let results: Vec<(Vec<Hit>, Option<String>)> = cases
        .par_iter()
        .map(|case| {
            let verdict = |e: Evaluator| {
                platform
                    .policies()
                    .unwrap()
                    .evaluate_with(e, case.input.clone())
                    .unwrap_or_else(|err| panic!("{}: {e:?} failed: {err}", case.label))
            };
            // The whole-tree query is what the findings were before: the reference.
            let tree = verdict(Evaluator::WholeTree);
            assert_eq!(
                verdict(Evaluator::Interpreter),
                tree,
                "{}: the gathering rule and the whole tree disagree",
                case.label
            );
            // What every command uses.
            assert_eq!(
                platform
                    .policies()
                    .unwrap()
                    .evaluate(case.input.clone())
                    .unwrap(),
                tree
            );
            let compiled = verdict(Evaluator::Compiled);
            let differs = (compiled != tree).then(|| {
                let missing: Vec<&str> = tree
                    .iter()
                    .filter(|h| !compiled.contains(h))
                    .map(|h| h.rule.as_str())
                    .collect();
                let extra: Vec<&str> = compiled
                    .iter()
                    .filter(|h| !tree.contains(h))
                    .map(|h| h.rule.as_str())
                    .collect();
                format!("{}: compiled lacks {missing:?}, adds {extra:?}", case.label)
            });
            (tree, differs)
        })
        .collect();
    let mut rules_seen = BTreeSet::new();
    let mut with_findings = 0;
    let mut compiled_differs = Vec::new();
    for (tree, differs) in results {
        with_findings += usize::from(!tree.is_empty());
        rules_seen.extend(
            tree.iter()
                .map(|h| format!("{} ({:?})", h.rule, h.severity)),
        );
        compiled_differs.extend(differs);
    }
    // The compiled form may only become the default once it agrees everywhere.
    if !compiled_differs.is_empty() {
        eprintln!(
            "the compiled form differs on {} of {} inputs, e.g.:\n  {}",
            compiled_differs.len(),
            cases.len(),
            compiled_differs[..compiled_differs.len().min(10)].join("\n  ")
        );
        assert_ne!(Evaluator::DEFAULT, Evaluator::Compiled);
    }
    // The corpus is not vacuous: it makes most rules fire, errors and warnings both.
    assert!(cases.len() > 300, "only {} inputs", cases.len());
    assert!(
        with_findings >= 100,
        "only {with_findings} inputs had findings"
    );
    assert!(
        rules_seen.len() >= 15 && rules_seen.iter().any(|r| r.ends_with("(Warning)")),
        "only these rules fired: {rules_seen:?}"
    );
    eprintln!(
        "{} inputs, {with_findings} with findings, {} rules fired",
        cases.len(),
        rules_seen.len()
    );
}

#[test]
fn a_platform_policy_in_a_nested_package_or_with_strings_is_found_by_every_evaluator() {
    // A platform team's own directory: deny/warn rules in `package gitops`,
    // `gitops.a.b`, plain-string findings, and a `deny` that is not a set.
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for top in ["templates", "schemas"] {
        copy_dir(&root.join(top), &dir.path().join(top));
    }
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::copy(
        root.join("policies/teams.yaml"),
        dir.path().join("policies/teams.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("policies/top.rego"),
        "package gitops\n\ndeny contains \"top-level string\" if { input.context.env == \"prod\" }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("policies/nested.rego"),
        "package gitops.a.b\n\nwarn contains {\"rule\": \"nested\", \"message\": sprintf(\"%d objects\", [count(input.manifests)])} if { true }\n\nhelper := {\"deny\": [\"not a rule\"]}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("policies/odd.rego"),
        "package gitops.odd\n\ndeny := \"a string, not a set\"\nwarn contains {\"rule\": \"odd\", \"message\": input.values.app} if { input.values.app }\n",
    )
    .unwrap();
    let platform = Platform::resolve(Some(dir.path())).unwrap();
    let bytes = std::fs::read(root.join("examples/payments-api.yaml")).unwrap();
    let (input, _) = checked_input(&platform, &bytes, "prod", None).unwrap();
    let verdicts: Vec<Vec<Hit>> = EVALUATORS
        .iter()
        .map(|e| {
            platform
                .policies()
                .unwrap()
                .evaluate_with(*e, input.clone())
                .unwrap()
        })
        .collect();
    let rules: Vec<&str> = verdicts[0].iter().map(|h| h.rule.as_str()).collect();
    assert_eq!(rules, ["nested", "odd", "policy"], "{:?}", verdicts[0]);
    assert_eq!(verdicts[0], verdicts[1]);
    // The whole-tree query also read a `deny` key inside any object-valued rule (here
    // `helper`); only rules named deny and warn are findings now.
    let mut tree = verdicts[2].clone();
    tree.retain(|h| h.message != "not a rule");
    assert_eq!(verdicts[0], tree);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
