//! `validate` on manifests as people have them, driven through the real binary: a corpus
//! of real-shaped files (tests/fixtures/manifests) with every finding, its line and its
//! column pinned as a snapshot, and the promises that hold across files.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{bin_in, fixtures, run};
use serde_json::Value;

/// `(exit code, findings)` of `validate --output json` with these arguments, run in `dir`.
fn validate_json(dir: &Path, args: &[&str]) -> (i32, Vec<Value>) {
    let (code, out, err) = run(bin_in(dir)
        .arg("validate")
        .args(args)
        .args(["--output", "json"]));
    assert!(
        code == 0 || code == 1,
        "exit {code} for {args:?}:\n{out}{err}"
    );
    let json: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    assert_eq!(json["ok"], code == 0, "{out}");
    (
        code,
        json["findings"].as_array().cloned().unwrap_or_default(),
    )
}

/// One line per finding: where, how bad, which rule, on what, and what it says.
fn listing(code: i32, findings: &[Value]) -> String {
    let mut out = format!("exit {code}\n");
    for f in findings {
        let at = |k: &str| f[k].as_u64().map(|n| n.to_string()).unwrap_or("-".into());
        out.push_str(&format!(
            "{}:{}:{} {} {} [{}] {}\n",
            f["file"].as_str().unwrap_or("-"),
            at("line"),
            at("column"),
            f["severity"].as_str().unwrap_or("?"),
            f["rule"].as_str().unwrap_or("?"),
            f["resource"].as_str().unwrap_or("-"),
            f["message"].as_str().unwrap_or(""),
        ));
        if let Some(help) = f["help"].as_str() {
            out.push_str(&format!("    help: {help}\n"));
        }
    }
    out
}

/// Every file of the corpus alone: the exact findings, lines and columns are pinned.
#[test]
fn the_corpus_is_judged_as_the_api_server_and_the_policies_would() {
    let dir = fixtures().join("manifests");
    insta::glob!("../fixtures", "manifests/*", |path| {
        let name = path.file_name().unwrap().to_str().unwrap();
        let (code, findings) = validate_json(&dir, &[name]);
        let docs = std::fs::read_to_string(common::root().join("docs/rules.md")).unwrap();
        for f in &findings {
            assert_eq!(f["file"], name, "{f}");
            let rule = f["rule"].as_str().unwrap();
            assert!(
                docs.contains(rule),
                "{rule} is not documented in docs/rules.md"
            );
        }
        insta::assert_snapshot!(listing(code, &findings));
    });
}

/// The identity of a finding: where it is and what it says.
fn keys(findings: &[Value]) -> BTreeSet<String> {
    findings
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {} {} {}",
                f["file"], f["line"], f["column"], f["rule"], f["resource"], f["message"]
            )
        })
        .collect()
}

/// Validating files together finds in each exactly what validating it alone finds, at
/// the same file and line, although the files hold objects of the same kind and name.
#[test]
fn files_validated_together_keep_their_own_findings() {
    let tmp = tempfile::tempdir().unwrap();
    let deployment = |privileged: bool, image: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n        - name: web\n          image: {image}\n          securityContext:\n            privileged: {privileged}\n"
        )
    };
    std::fs::write(tmp.path().join("a.yaml"), deployment(false, "nginx:1.27")).unwrap();
    std::fs::write(
        tmp.path().join("b.yaml"),
        format!("# b\n\n{}", deployment(true, "nginx")),
    )
    .unwrap();
    let corpus = fixtures().join("manifests");
    let mut names: Vec<String> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        // Its definitions would check the routes of the file without them.
        .filter(|n| n != "gateway-route-with-crd.yaml")
        .collect();
    names.sort();
    for n in &names {
        std::fs::copy(corpus.join(n), tmp.path().join(n)).unwrap();
    }
    names.push("a.yaml".into());
    names.push("b.yaml".into());
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    let (_, together) = validate_json(tmp.path(), &all);
    let mut alone = Vec::new();
    for n in &all {
        alone.extend(validate_json(tmp.path(), &[n]).1);
    }
    assert_eq!(keys(&together), keys(&alone));
    let privileged: Vec<&Value> = together
        .iter()
        .filter(|f| f["rule"] == "pss-privileged" && f["resource"] == "Deployment/web")
        .collect();
    assert_eq!(privileged.len(), 1, "{privileged:?}");
    assert_eq!(privileged[0]["file"], "b.yaml");
    assert_eq!(privileged[0]["line"], 18);
    let untagged: Vec<&Value> = together
        .iter()
        .filter(|f| f["rule"] == "image-tag-missing")
        .collect();
    assert_eq!(untagged.len(), 1);
    assert_eq!(untagged[0]["file"], "b.yaml");
    assert_eq!(untagged[0]["line"], 16);
}

/// A value of the wrong shape anywhere in a pod is a finding on its object; the run
/// goes on, and another file's findings are all still there.
#[test]
fn no_value_of_the_wrong_shape_costs_other_files_their_findings() {
    let tmp = tempfile::tempdir().unwrap();
    let pointers = [
        "spec.template.spec.volumes",
        "spec.template.spec.containers",
        "spec.template.spec.initContainers",
        "spec.template.spec.containers.0.ports",
        "spec.template.spec.containers.0.env",
        "spec.template.spec.containers.0.securityContext",
        "spec.template.spec.containers.0.securityContext.capabilities.add",
        "spec.template.spec.containers.0.securityContext.capabilities.drop",
        "spec.template.spec.containers.0.resources",
        "spec.template.spec.containers.0.resources.limits",
        "spec.template.spec.containers.0.image",
        "spec.template.spec.securityContext",
        "spec.template.metadata.labels",
        "spec.selector",
        "spec.replicas",
        "metadata.labels",
        "metadata",
        "spec",
    ];
    let replacements = ["null", "3", "text", "[1, x]", "{a: b}", "true"];
    let base: Value = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "v", "labels": {"app": "v"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "v"}},
            "template": {"metadata": {"labels": {"app": "v"}}, "spec": {
                "securityContext": {"runAsNonRoot": true},
                "volumes": [{"name": "tmp", "emptyDir": {}}],
                "initContainers": [{"name": "init", "image": "i:1"}],
                "containers": [{"name": "c", "image": "i:1", "ports": [{"containerPort": 80}],
                    "env": [{"name": "A", "value": "b"}],
                    "resources": {"limits": {"cpu": "1"}},
                    "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}}}]}}}
    });
    let mut names = vec!["marker.yaml".to_string()];
    std::fs::write(
        tmp.path().join("marker.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: marker, namespace: m}\nspec:\n  containers:\n    - name: c\n      image: registry.example.com/x:1\n      securityContext: {privileged: true}\n",
    )
    .unwrap();
    for (i, p) in pointers.iter().enumerate() {
        for (j, r) in replacements.iter().enumerate() {
            // The one value replaced in the YAML text, so scalars stay plain.
            let mut v = base.clone();
            let mut at = &mut v;
            let parts: Vec<&str> = p.split('.').collect();
            for k in &parts[..parts.len() - 1] {
                at = match k.parse::<usize>() {
                    Ok(n) => &mut at[n],
                    Err(_) => &mut at[*k],
                };
            }
            at[parts[parts.len() - 1]] = Value::String(format!("@@{j}@@"));
            let doc = gitops_render::yaml::to_yaml(&v).replace(&format!("\"@@{j}@@\""), r);
            let name = format!("variant-{i:02}-{j}.yaml");
            std::fs::write(tmp.path().join(&name), doc).unwrap();
            names.push(name);
        }
    }
    let args: Vec<&str> = names.iter().map(String::as_str).collect();
    let (code, findings) = validate_json(tmp.path(), &args);
    assert_eq!(code, 1);
    assert!(
        findings
            .iter()
            .any(|f| f["file"] == "marker.yaml" && f["rule"] == "pss-privileged" && f["line"] == 8),
        "the marker's finding is missing"
    );
    assert!(
        !findings.iter().any(|f| f["rule"] == "policy-error"),
        "a policy failed on a variant: {:?}",
        findings
            .iter()
            .filter(|f| f["rule"] == "policy-error")
            .collect::<Vec<_>>()
    );
    // Every variant is judged (each has at least one finding of its own).
    for n in &names[1..] {
        assert!(
            findings.iter().any(|f| f["file"] == n.as_str()),
            "{n}: no findings"
        );
    }
}

#[test]
fn directories_include_json_manifests_and_crd_flags_check_custom_resources() {
    let dir = fixtures().join("manifests");
    let (_, findings) = validate_json(&dir, &["."]);
    assert!(
        findings.iter().any(|f| f["file"] == "./deployment.json"),
        "no finding from deployment.json"
    );
    // Without definitions the routes are not checked; with --crd they are, and the
    // cluster-scoped GatewayClass is not asked for a namespace.
    let (_, without) = validate_json(&dir, &["gateway-route-without-crd.yaml"]);
    assert!(without.iter().any(|f| f["rule"] == "kube-no-schema"));
    let (_, with) = validate_json(
        &dir,
        &[
            "gateway-route-without-crd.yaml",
            "--crd",
            "gateway-route-with-crd.yaml",
        ],
    );
    assert!(
        !with.iter().any(|f| f["rule"] == "kube-no-schema"),
        "{with:?}"
    );
    assert!(
        !with.iter().any(|f| f["rule"] == "namespace-missing"),
        "{with:?}"
    );
}

#[test]
fn unusable_crd_files_and_missing_inputs_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("crd.yaml"), "kind: [\n").unwrap();
    std::fs::write(
        tmp.path().join("m.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
    )
    .unwrap();
    let (code, _, err) = run(bin_in(tmp.path()).args(["validate", "m.yaml", "--crd", "crd.yaml"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("crd.yaml:2:"), "{err}");
    let (code, _, err) = run(bin_in(tmp.path()).args(["validate", "nope.yaml"]));
    assert_eq!(code, 2, "{err}");
}

#[test]
fn standard_input_is_read_with_its_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = run(bin_in(tmp.path())
        .args(["validate", "-", "--output", "json"])
        .write_stdin("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: x\ndata:\n  ON: on\n"));
    assert_eq!(code, 1, "{out}{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    let f = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "yaml-ambiguous-scalar")
        .cloned()
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(f["file"], "<stdin>");
    assert_eq!(f["line"], 7);
    assert_eq!(f["help"], "quote it: \"on\"");
}

/// A Kustomize tree as it sits in a GitOps repository: the kustomizations are build
/// instructions and their patches fragments, so neither is judged as an object, while
/// every other file still is.
#[test]
fn kustomizations_and_their_patches_are_not_judged_as_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let file = tmp.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    };
    write("base/kustomization.yaml", "resources:\n- deploy.yaml\n");
    write(
        "base/deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: nginx:1.27}]\n",
    );
    write(
        "overlays/prod/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../../base]\npatches:\n- path: replicas.yaml\n- patch: |-\n    - op: replace\n      path: /spec/replicas\n      value: 3\n  target: {kind: Deployment}\npatchesStrategicMerge:\n- ../../shared/./resources.yaml\npatchesJson6902:\n- path: json/ops.yaml\n  target: {kind: Deployment, name: web}\n",
    );
    let fragment =
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 3\n";
    write("overlays/prod/replicas.yaml", fragment);
    write("shared/resources.yaml", fragment);
    write(
        "overlays/prod/json/ops.yaml",
        "- {op: add, path: /spec/paused, value: true}\n",
    );
    // Not listed anywhere: a fragment like the others, and judged as the object it claims to be.
    write("overlays/prod/stray.yaml", fragment);

    let (_, findings) = validate_json(tmp.path(), &["."]);
    let about = |file: &str| -> Vec<String> {
        findings
            .iter()
            .filter(|f| f["file"] == file)
            .map(|f| f["rule"].as_str().unwrap().to_string())
            .collect()
    };
    for kustomization in [
        "./base/kustomization.yaml",
        "./overlays/prod/kustomization.yaml",
    ] {
        assert_eq!(about(kustomization), Vec::<String>::new(), "{findings:#?}");
    }
    for patch in [
        "./overlays/prod/replicas.yaml",
        "./shared/resources.yaml",
        "./overlays/prod/json/ops.yaml",
    ] {
        assert_eq!(about(patch), ["manifest-kustomize-patch"], "{patch}");
    }
    let stray = about("./overlays/prod/stray.yaml");
    assert!(
        stray.iter().any(|r| r == "kube-required-field"),
        "{stray:?}"
    );
    assert!(!about("./base/deploy.yaml").is_empty());
}
