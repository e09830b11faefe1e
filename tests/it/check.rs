//! `check`, `render`, `validate` and `policy test` driven through the real binary.

use crate::common;

use common::{bin, bin_in, fixtures, root, run};
use serde_json::Value;

const EXAMPLES: [&str; 3] = [
    "examples/payments-api.yaml",
    "examples/ledger-worker.yaml",
    "examples/nightly-report.yaml",
];

#[test]
fn the_examples_pass_in_every_environment() {
    let (code, out, err) = run(bin().args(["check", "--output", "json"]).args(EXAMPLES));
    let json: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    assert_eq!(json["ok"], true, "{out}");
    assert_eq!(code, 0);
    let errors: Vec<&Value> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

/// Every bad values file is rejected with exit 1, and the exact text output (the
/// findings, their lines and hints) is pinned as a snapshot.
#[test]
fn bad_values_are_rejected_with_file_and_line() {
    let dir = fixtures().join("values/bad");
    insta::glob!("../fixtures", "values/bad/*.yaml", |path| {
        let name = path.file_name().unwrap().to_str().unwrap();
        let (code, out, err) = run(bin_in(&dir).args(["check", "--env", "prod", name]));
        assert_eq!(code, 1, "{name} should be rejected:\n{out}{err}");
        assert!(
            out.contains(&format!("--> {name}:")),
            "{name}: no file:line in\n{out}"
        );
        insta::assert_snapshot!(out);
    });
}

#[test]
fn good_values_with_yaml_traps_are_accepted_as_written() {
    let dir = fixtures().join("values/good");
    for name in [
        "yaml-1.1-words-stay-strings.yaml",
        "small-alias.yaml",
        "digest.yaml",
    ] {
        let (code, out, err) = run(bin_in(&dir).args(["check", name]));
        assert_eq!(code, 0, "{name}:\n{out}{err}");
    }
    let (_, out, _) =
        run(bin_in(&dir).args(["render", "yaml-1.1-words-stay-strings.yaml", "--env", "dev"]));
    for expected in [
        "value: \"yes\"",
        "value: \"off\"",
        "value: \"NO\"",
        "value: \"0755\"",
        "value: \"1e3\"",
        "app.kubernetes.io/version: \"1.10\"",
    ] {
        assert!(out.contains(expected), "missing {expected} in\n{out}");
    }
}

#[test]
fn files_that_are_not_yaml_text_are_rejected_without_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "invalid-utf8.yaml",
            b"app: \xff\xfe\n".to_vec(),
            "values-encoding",
        ),
        ("nul.yaml", b"app: a\0b\n".to_vec(), "values-encoding"),
        (
            "huge.yaml",
            format!("app: a\nenv:\n{}", "  K: v\n".repeat(20_000)).into_bytes(),
            "values-too-large",
        ),
        (
            "deep.yaml",
            format!("app: {}1{}\n", "[".repeat(200), "]".repeat(200)).into_bytes(),
            "yaml-too-deep",
        ),
    ];
    for (name, bytes, rule) in cases {
        std::fs::write(tmp.path().join(name), bytes).unwrap();
        let (code, out, err) = run(bin_in(tmp.path()).args(["check", name, "--output", "json"]));
        assert_eq!(code, 1, "{name}: {out}{err}");
        assert!(out.contains(rule), "{name}: expected {rule} in {out}");
    }
}

#[test]
fn unreadable_input_and_bad_flags_are_usage_errors() {
    let (code, _, err) = run(bin().args(["check", "no/such/file.yaml"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no/such/file.yaml"), "{err}");
    let (code, _, err) = run(bin().args(["check", "--output", "xml", EXAMPLES[0]]));
    assert_eq!(code, 2);
    assert!(
        err.contains("invalid value 'xml' for '--output <FORMAT>'")
            && err.contains("text, json, sarif, junit, github"),
        "{err}"
    );
    let (code, _, err) = run(bin().args(["check", "--env", "qa", EXAMPLES[0]]));
    assert_eq!(code, 2);
    assert!(err.contains("dev, staging, prod"), "{err}");
}

#[test]
fn render_is_byte_identical_and_independent_of_key_order() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let shuffled = tmp.path().join("shuffled.yaml");
    // The same values, keys in another order, different comments and quoting.
    std::fs::write(
        &shuffled,
        "# reordered\nsecrets: [\"payments-db\"]\nversion: \"1.4.2\"\nenvironments:\n  dev: { env: { LOG_LEVEL: debug }, size: small, replicas: 1 }\n  prod: { size: large, replicas: 6 }\nport: 8080\nsize: medium\nenv: { FEATURE_FLAGS: \"refunds,disputes\", LOG_LEVEL: info }\nimage: registry.example.com/payments/payments-api\nreplicas: 3\nhealth: { path: /healthz }\ningress: { host: api.payments.apps.example.com }\narchetype: web-service\nteam: payments\napp: payments-api\n",
    )
    .unwrap();
    let (code, _, err) = run(bin()
        .args(["render", EXAMPLES[0], "--env", "prod", "--out"])
        .arg(&a));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(bin()
        .args(["render", "--env", "prod", "--out"])
        .arg(&b)
        .arg(&shuffled));
    assert_eq!(code, 0, "{err}");
    let list = |d: &std::path::Path| {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    assert_eq!(list(&a), list(&b));
    for name in list(&a) {
        assert_eq!(
            std::fs::read(a.join(&name)).unwrap(),
            std::fs::read(b.join(&name)).unwrap(),
            "{name:?} differs"
        );
    }
    // And once more into the same directory: nothing changes.
    let before: Vec<Vec<u8>> = list(&a)
        .iter()
        .map(|n| std::fs::read(a.join(n)).unwrap())
        .collect();
    let (code, out, err) = run(bin()
        .args(["render", EXAMPLES[0], "--env", "prod", "--out"])
        .arg(&a));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "", "render --out prints no manifests");
    let after: Vec<Vec<u8>> = list(&a)
        .iter()
        .map(|n| std::fs::read(a.join(n)).unwrap())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn render_writes_one_object_per_file_and_a_kustomization_listing_them() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let (code, _, err) = run(bin()
        .args(["render", EXAMPLES[0], "--env", "prod", "--out"])
        .arg(&out));
    assert_eq!(code, 0, "{err}");
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let kustomization = std::fs::read_to_string(out.join("kustomization.yaml")).unwrap();
    for name in &names {
        if name == "kustomization.yaml" || name == "values.yaml" {
            continue;
        }
        assert!(
            kustomization.contains(&format!("- {name}")),
            "{name} not listed:\n{kustomization}"
        );
        let text = std::fs::read_to_string(out.join(name)).unwrap();
        assert_eq!(
            text.matches("\nkind: ").count(),
            1,
            "{name} holds one object"
        );
        let kind = name.split('-').next().unwrap();
        assert!(
            text.to_lowercase().contains(&format!("kind: {kind}")),
            "{name}"
        );
    }
    for expected in [
        "deployment-payments-api.yaml",
        "service-payments-api.yaml",
        "networkpolicy-payments-api.yaml",
        "poddisruptionbudget-payments-api.yaml",
        "serviceaccount-payments-api.yaml",
        "ingress-payments-api.yaml",
        "values.yaml",
    ] {
        assert!(
            names.contains(&expected.to_string()),
            "{expected} missing from {names:?}"
        );
    }
}

#[test]
fn rejected_values_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let bad = fixtures().join("values/bad/foreign-registry.yaml");
    let (code, stdout, stderr) = run(bin()
        .args(["render", "--env", "prod", "--out"])
        .arg(&out)
        .arg(&bad));
    assert_eq!(code, 1);
    // render's standard output carries manifests only: a rejection goes to stderr.
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("image-registry") && stderr.contains("docker.io/library/nginx"),
        "{stderr}"
    );
    assert!(
        !out.exists(),
        "render wrote into {out:?} despite rejecting the values"
    );
}

#[test]
fn every_output_format_carries_the_same_findings() {
    let dir = fixtures().join("values/bad");
    let file = "typo-top-level.yaml";
    let (code, json, _) =
        run(bin_in(&dir).args(["check", "--env", "dev", "--output", "json", file]));
    assert_eq!(code, 1);
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["ok"], false);
    let f = &json["findings"][0];
    assert_eq!(f["rule"], "values-unknown-field");
    assert_eq!(f["severity"], "error");
    assert_eq!(f["file"], file);
    assert_eq!(f["line"], 7);
    assert_eq!(f["column"], 1);

    let (code, sarif, _) =
        run(bin_in(&dir).args(["check", "--env", "dev", "--output", "sarif", file]));
    assert_eq!(code, 1);
    let sarif: Value = serde_json::from_str(&sarif).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "values-unknown-field");
    assert_eq!(result["level"], "error");
    let loc = &result["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], file);
    assert_eq!(loc["region"]["startLine"], 7);
    let rule = &sarif["runs"][0]["tool"]["driver"]["rules"][0];
    assert_eq!(rule["id"], "values-unknown-field");
    // SARIF wants an absolute URI for a rule's help; the project has no public home set
    // (`repository` in Cargo.toml), so there is none rather than a made-up one.
    assert_eq!(rule["helpUri"], Value::Null);
    assert_eq!(
        rule["shortDescription"]["text"],
        "a field the values schema does not know"
    );

    let (code, junit, _) =
        run(bin_in(&dir).args(["check", "--env", "dev", "--output", "junit", file]));
    assert_eq!(code, 1);
    assert!(junit.starts_with("<?xml"), "{junit}");
    assert!(
        junit.contains("<failure") && junit.contains("values-unknown-field"),
        "{junit}"
    );

    let (code, gh, _) =
        run(bin_in(&dir).args(["check", "--env", "dev", "--output", "github", file]));
    assert_eq!(code, 1);
    assert!(
        gh.contains(&format!(
            "::error file={file},line=7,col=1,title=values-unknown-field::unknown field `replcias`"
        )),
        "{gh}"
    );
}

#[test]
fn a_policy_finding_names_the_rendered_object_it_is_about() {
    // `lib.finding_at` gives the object's index; check names it ("Kind/name") itself.
    let bad = fixtures().join("values/bad/foreign-registry.yaml");
    let (code, out, err) = run(bin()
        .args(["check", "--output", "json", "--env", "prod"])
        .arg(&bad));
    assert_eq!(code, 1, "{out}{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    let findings = json["findings"].as_array().unwrap();
    let registry = findings
        .iter()
        .find(|f| f["rule"] == "image-registry")
        .unwrap_or_else(|| panic!("no image-registry in {out}"));
    assert_eq!(registry["resource"], "Deployment/payments-api", "{out}");
    assert_eq!(
        registry["line"], 5,
        "at the values field that chose the image: {out}"
    );
}

#[test]
fn validate_points_at_the_manifest_line() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("m.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\ndata: {a: b}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers:\n        - name: web\n          image: nginx:1.27\n          imagePullPolicyy: Always\n---\napiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: old}\n---\napiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: app}\n",
    )
    .unwrap();
    let (code, out, err) = run(bin_in(tmp.path()).args(["validate", "m.yaml", "--output", "json"]));
    assert_eq!(code, 1, "{out}{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    let find = |rule: &str| {
        json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule"] == rule)
            .cloned()
            .unwrap_or_else(|| panic!("no {rule} in {out}"))
    };
    let unknown = find("kube-unknown-field");
    assert_eq!(unknown["line"], 20);
    assert_eq!(unknown["column"], 11);
    assert_eq!(find("kube-api-version")["line"], 22);
    assert_eq!(find("kube-no-schema")["severity"], "warning");
}

#[test]
fn a_broken_platform_is_exit_2_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = |dst: &std::path::Path| {
        for top in ["templates", "schemas", "policies"] {
            copy_dir(&root().join(top), &dst.join(top));
        }
    };
    // A template syntax error.
    let p = tmp.path().join("template");
    copy(&p);
    let t = p.join("templates/worker/deployment.yaml.j2");
    let text = std::fs::read_to_string(&t).unwrap();
    std::fs::write(&t, format!("{text}\n{{% if %}}\n")).unwrap();
    let (code, _, err) = run(bin().args(["check", "--platform"]).arg(&p).arg(EXAMPLES[1]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("deployment.yaml.j2:"), "{err}");
    // An invalid schema.
    let p = tmp.path().join("schema");
    copy(&p);
    std::fs::write(
        p.join("schemas/values.schema.json"),
        "{\n  \"type\": \"object\",\n  \"properties\": 3\n}\n",
    )
    .unwrap();
    let (code, _, err) = run(bin().args(["check", "--platform"]).arg(&p).arg(EXAMPLES[1]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("values.schema.json"), "{err}");
    // A Rego parse error.
    let p = tmp.path().join("rego");
    copy(&p);
    std::fs::write(
        p.join("policies/broken.rego"),
        "package gitops.broken\n\ndeny contains x if {\n  x := \n}\n",
    )
    .unwrap();
    let (code, _, err) = run(bin().args(["check", "--platform"]).arg(&p).arg(EXAMPLES[1]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("broken.rego:"), "{err}");
    // A platform directory that is not there.
    let (code, _, err) = run(bin()
        .args(["check", "--platform", "/no/such/dir"])
        .arg(EXAMPLES[1]));
    assert_eq!(code, 2);
    assert!(err.contains("/no/such/dir"), "{err}");
}

#[test]
fn the_platform_can_come_from_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    for top in ["templates", "schemas", "policies"] {
        copy_dir(&root().join(top), &tmp.path().join(top));
    }
    // This platform knows only dev.
    let settings = tmp.path().join("templates/platform.yaml");
    let text = std::fs::read_to_string(&settings).unwrap();
    std::fs::write(
        &settings,
        text.replace("environments: [dev, staging, prod]", "environments: [dev]"),
    )
    .unwrap();
    let (code, _, err) = run(bin().env("GITOPS_RENDER_PLATFORM", tmp.path()).args([
        "check",
        "--env",
        "prod",
        EXAMPLES[1],
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("this platform has: dev"), "{err}");
}

/// `  92.3%  policies/pss.rego  (120/130 lines)...` -> (file, covered, total).
fn coverage_lines(out: &str) -> Vec<(String, usize, usize)> {
    out.lines()
        .skip_while(|l| *l != "coverage:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let mut words = l.split_whitespace();
            let pct: f64 = words.next().unwrap().trim_end_matches('%').parse().unwrap();
            let file = words.next().unwrap().to_string();
            let counts = words.next().unwrap().trim_start_matches('(');
            let (c, t) = counts.split_once('/').unwrap();
            let (c, t): (usize, usize) = (c.parse().unwrap(), t.parse().unwrap());
            let expected = if t == 0 {
                100.0
            } else {
                c as f64 * 100.0 / t as f64
            };
            assert!((pct - expected).abs() < 0.06, "{l}");
            (file, c, t)
        })
        .collect()
}

#[test]
fn policy_tests_pass_with_coverage_of_every_policy_file() {
    let (code, out, err) = run(bin().args(["policy", "test", "--min-coverage", "80"]));
    assert_eq!(code, 0, "{out}{err}");
    let passed: usize = out
        .lines()
        .find_map(|l| l.strip_suffix(" passed, 0 failed"))
        .unwrap_or_else(|| panic!("{out}"))
        .parse()
        .unwrap();
    let lines = coverage_lines(&out);
    let files: Vec<&str> = lines.iter().map(|(f, _, _)| f.as_str()).collect();
    // Every policy file of the standard platform, test files excluded, and the total.
    // (`policies/deploy/`, the deploy API's authorization, is covered like the rest.)
    let mut expected: Vec<String> = ["policies", "policies/deploy"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root().join(d)).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rego") && !n.ends_with("_test.rego"))
        .collect();
    expected.sort();
    let shown: Vec<String> = files[..files.len() - 1]
        .iter()
        .map(|f| f.rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(shown, expected, "{out}");
    assert_eq!(files.last(), Some(&"total"));
    let (_, covered, total) = lines.last().unwrap();
    let sum = |f: fn(&(String, usize, usize)) -> usize| {
        lines[..lines.len() - 1].iter().map(f).sum::<usize>()
    };
    assert_eq!(*covered, sum(|l| l.1));
    assert_eq!(*total, sum(|l| l.2));
    // The standard policies are tested: many tests, hundreds of lines, most covered.
    assert!(passed >= 50, "{out}");
    assert!(*total >= 200, "{out}");
    for (file, c, t) in &lines {
        assert!(*t > 0 && c * 100 >= t * 80, "{file}: {c}/{t}");
    }
}

/// A platform with a policy file no test touches: that file is 0% covered (not absent,
/// not 100%), and --min-coverage 100 fails the run.
#[test]
fn an_untested_policy_file_is_zero_percent_and_fails_min_coverage() {
    let tmp = tempfile::tempdir().unwrap();
    for top in ["templates", "schemas", "policies"] {
        copy_dir(&root().join(top), &tmp.path().join(top));
    }
    std::fs::write(
        tmp.path().join("policies/untested.rego"),
        "package gitops.untested\n\nimport data.gitops.lib\n\n# A rule no test exercises.\ndeny contains f if {\n\tsome obj in lib.manifests\n\tobj.kind == \"Pod\"\n\tf := {\"rule\": \"no-bare-pods\", \"message\": \"use a Deployment\"}\n}\n",
    )
    .unwrap();
    let (code, out, err) = run(bin()
        .args(["policy", "test", "--min-coverage", "100", "--platform"])
        .arg(tmp.path()));
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains(" passed, 0 failed"), "{out}");
    let lines = coverage_lines(&out);
    let (_, covered, total) = lines
        .iter()
        .find(|(f, _, _)| f.ends_with("policies/untested.rego"))
        .unwrap_or_else(|| panic!("untested.rego is not in the coverage:\n{out}"));
    assert_eq!((*covered, *total), (0, 4), "{out}");
    assert!(
        out.contains("0.0%") && out.contains("untested.rego  (0/4 lines)  not covered: 6-9"),
        "{out}"
    );
    assert!(err.contains("is below --min-coverage 100%"), "{err}");
    // The same platform passes a threshold it meets.
    let (code, _, err) = run(bin()
        .args(["policy", "test", "--min-coverage", "50", "--platform"])
        .arg(tmp.path()));
    assert_eq!(code, 0, "{err}");
    // And a threshold that is not a percentage is a usage error.
    let (code, _, err) = run(bin().args(["policy", "test", "--min-coverage", "150"]));
    assert_eq!(code, 2);
    assert!(err.contains("not a percentage"), "{err}");
}

/// Exact numbers on a policy whose lines are known: a test that exercises one of two
/// rules covers that rule's lines and no others.
#[test]
fn coverage_counts_the_lines_the_tests_reach() {
    let tmp = tempfile::tempdir().unwrap();
    for top in ["templates", "schemas", "policies"] {
        copy_dir(&root().join(top), &tmp.path().join(top));
    }
    std::fs::write(
        tmp.path().join("policies/tiny.rego"),
        "package gitops.tiny\n\ndeny contains f if {\n\tinput.a == 1\n\tf := {\"rule\": \"tiny-a\", \"message\": \"a\"}\n}\n\ndeny contains f if {\n\tinput.b == 1\n\tf := {\"rule\": \"tiny-b\", \"message\": \"b\"}\n}\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("policies/tiny_test.rego"),
        "package gitops.tiny_test\n\nimport data.gitops.tiny\n\ntest_a if {\n\tsome f in tiny.deny with input as {\"a\": 1}\n\tf.rule == \"tiny-a\"\n}\n",
    )
    .unwrap();
    let (code, out, err) = run(bin()
        .args(["policy", "test", "--filter", "tiny_test", "--platform"])
        .arg(tmp.path()));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 passed, 0 failed"), "{out}");
    let tiny = coverage_lines(&out)
        .into_iter()
        .find(|(f, _, _)| f.ends_with("policies/tiny.rego"))
        .unwrap();
    // Both heads and bodies count: the first rule ran whole (lines 3-5); the second was
    // tried (line 9 evaluated, false), so its head (8) and its last line (10) never ran.
    assert_eq!((tiny.1, tiny.2), (4, 6), "{out}");
    assert!(
        out.contains("tiny.rego  (4/6 lines)  not covered: 8, 10"),
        "{out}"
    );
}

#[test]
fn a_failing_policy_test_fails_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    for top in ["templates", "schemas", "policies"] {
        copy_dir(&root().join(top), &tmp.path().join(top));
    }
    std::fs::write(
        tmp.path().join("policies/extra_test.rego"),
        "package gitops.extra_test\n\ntest_that_fails if {\n  1 == 2\n}\n",
    )
    .unwrap();
    let (code, out, _) = run(bin().args(["policy", "test", "--platform"]).arg(tmp.path()));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL data.gitops.extra_test.test_that_fails"),
        "{out}"
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// A waiver silences its rule for its app and environment only, until it expires; then
/// it stops applying and says so. `check` and `validate` honour it alike.
#[test]
fn waivers_apply_to_their_rule_app_and_env_until_they_expire() {
    let tmp = tempfile::tempdir().unwrap();
    for top in ["templates", "schemas", "policies"] {
        copy_dir(&root().join(top), &tmp.path().join(top));
    }
    std::fs::write(
        tmp.path().join("policies/exceptions.yaml"),
        "waivers:\n  - rule: image-registry\n    app: payments-api\n    env: prod\n    reason: \"migrating off Docker Hub, PAY-42\"\n    expires: 2026-06-30\n",
    )
    .unwrap();
    let bad = fixtures().join("values/bad/foreign-registry.yaml");
    let check = |env: &str, today: &str| {
        run(bin()
            .env("GITOPS_RENDER_TODAY", today)
            .args(["check", "--output", "json", "--env", env, "--platform"])
            .arg(tmp.path())
            .arg(&bad))
    };
    let (code, out, _) = check("prod", "2026-06-30");
    assert_eq!(code, 0, "the waiver applies on its last day: {out}");
    let (code, out, _) = check("dev", "2026-06-30");
    assert_eq!(code, 1, "not in another environment: {out}");
    assert!(out.contains("\"rule\": \"image-registry\""), "{out}");
    let (code, out, _) = check("prod", "2026-07-01");
    assert_eq!(code, 1, "not after it expired: {out}");
    assert!(
        out.contains("waiver-expired") && out.contains("image-registry"),
        "{out}"
    );

    // validate, on the rendered manifests, with the app and environment given.
    let rendered = tmp.path().join("rendered");
    let (code, _, err) = run(bin()
        .env("GITOPS_RENDER_TODAY", "2026-06-30")
        .args(["render", "--env", "prod", "--out"])
        .arg(&rendered)
        .arg("--platform")
        .arg(tmp.path())
        .arg(&bad));
    assert_eq!(code, 0, "{err}");
    let validate = |app: &str| {
        run(bin()
            .env("GITOPS_RENDER_TODAY", "2026-06-30")
            .args([
                "validate",
                "--team",
                "payments",
                "--env",
                "prod",
                "--app",
                app,
                "--platform",
            ])
            .arg(tmp.path())
            .arg(&rendered))
    };
    let (code, out, _) = validate("payments-api");
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = validate("ledger-worker");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("image-registry"), "{out}");
}

/// The standard platform, copied, with one file changed by `edit`.
fn platform_with(dir: &std::path::Path, file: &str, edit: impl Fn(String) -> String) {
    for top in ["templates", "schemas", "policies"] {
        copy_dir(&root().join(top), &dir.join(top));
    }
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::write(&path, edit(text)).unwrap();
}

/// The policies load on a thread of their own while a command reads, renders and checks
/// its input, and input that never reaches them (values rejected by the schema, a file
/// with no objects) must not hide a broken one: exit 2, naming the file and line, with
/// nothing on standard output, from every command that loads them this way.
#[test]
fn a_broken_policy_is_exit_2_even_when_the_input_never_reaches_the_policies() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("platform");
    platform_with(&dir, "policies/broken.rego", |_| {
        "package gitops.broken\n\ndeny contains x if {\n  x := \n}\n".to_string()
    });
    let rejected = tmp.path().join("rejected.yaml");
    std::fs::write(&rejected, "app: payments-api\nnot_a_field: 1\n").unwrap();
    let empty = tmp.path().join("empty.yaml");
    std::fs::write(&empty, "# nothing here\n").unwrap();
    let rejected = rejected.to_str().unwrap();
    let empty = empty.to_str().unwrap();
    let missing = tmp.path().join("missing.yaml");
    let missing = missing.to_str().unwrap();
    for args in [
        vec!["check", rejected],
        vec!["check", rejected, "--output", "json"],
        vec!["check", missing],
        vec!["render", rejected, "--env", "dev"],
        vec!["render", rejected, "--env", "dev", "--output", "sarif"],
        vec!["validate", empty],
        vec!["validate", empty, "--output", "json"],
        vec!["check", EXAMPLES[0], "--env", "nowhere"],
    ] {
        let (code, out, err) = run(bin().arg("--platform").arg(&dir).args(&args));
        assert_eq!(code, 2, "{args:?}\n{out}{err}");
        assert!(
            err.contains("broken.rego:4:"),
            "{args:?} does not name the policy:\n{err}"
        );
        assert!(
            out.is_empty(),
            "{args:?} printed before the policies were known:\n{out}"
        );
    }
}

/// The deploy API's policy is loaded only by `serve`, the one command that uses it: a
/// broken one stops `serve` at startup (exit 2, with its file and line) and costs a
/// `check` nothing.
#[test]
fn a_broken_deploy_policy_stops_serve_and_leaves_check_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("platform");
    platform_with(&dir, "policies/deploy/deploy.rego", |t| {
        t.replacen("deny contains", "deny contains contains", 1)
    });
    let values = root().join(EXAMPLES[0]);
    let (code, out, err) = run(bin_in(tmp.path())
        .args(["check", "--env", "dev", "--platform"])
        .arg(&dir)
        .arg(&values));
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run(bin_in(tmp.path())
        .env("GITHUB_WEBHOOK_SECRET", "s")
        .env("GITHUB_APP_ID", "1")
        .env(
            "GITHUB_APP_PRIVATE_KEY",
            crate::common::github::keys().private_pem.as_str(),
        )
        .args(["serve", "--listen", "127.0.0.1:0", "--platform"])
        .arg(&dir));
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("deploy.rego:"), "{err}");
}

/// A broken platform file is exit 2 with its file and line under every command that
/// loads the platform, before anything is read or written.
#[test]
fn every_broken_platform_file_is_exit_2_with_file_and_line_under_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let teams_lines = std::fs::read_to_string(root().join("policies/teams.yaml"))
        .unwrap()
        .lines()
        .count();
    type Edit = Box<dyn Fn(String) -> String>;
    // (name, the file broken, how, the `file:line` the error must name)
    let cases: Vec<(&str, &str, Edit, String)> = vec![
        (
            "teams",
            "policies/teams.yaml",
            Box::new(|t| format!("{t}payments:\n  apps: []\n")),
            format!("teams.yaml:{}:", teams_lines + 1),
        ),
        (
            "exceptions",
            "policies/exceptions.yaml",
            Box::new(|_| {
                "waivers:\n  - rule: pss-privileged\n    app: payments-api\n    env: dev\n    reason: vendor\n    expires: next week\n".into()
            }),
            "exceptions.yaml:6:".into(),
        ),
        (
            "platform",
            "templates/platform.yaml",
            Box::new(|t| t.replace("environments: [dev, staging, prod]", "environments: dev")),
            "platform.yaml:5:".into(),
        ),
        (
            "kubernetes",
            "templates/platform.yaml",
            Box::new(|t| {
                t.replace(
                    "kubernetes_version: \"1.35\"",
                    "kubernetes_version: \"1.30\"",
                )
            }),
            "platform.yaml:4:".into(),
        ),
    ];
    let values = root().join(EXAMPLES[0]);
    let values = values.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["check", values],
        vec!["render", values, "--env", "dev"],
        vec!["validate", values],
        vec!["deploy", values, "--env", "dev", "--repo", "gitops"],
        vec![
            "rollback",
            "--repo",
            "gitops",
            "--app",
            "payments-api",
            "--env",
            "dev",
        ],
        vec![
            "promote",
            "--repo",
            "gitops",
            "--app",
            "payments-api",
            "--from",
            "dev",
            "--to",
            "prod",
        ],
        vec!["verify", "--repo", "gitops"],
        vec!["rerender", "--repo", "gitops", "--all"],
        vec!["check", "--all", "--repo", "gitops"],
        vec!["policy", "test"],
        vec!["serve", "--listen", "127.0.0.1:0"],
    ];
    for (name, file, edit, at) in &cases {
        let dir = tmp.path().join(name);
        platform_with(&dir, file, edit);
        for args in &commands {
            let (code, out, err) = run(bin_in(tmp.path())
                .env("GITHUB_WEBHOOK_SECRET", "s")
                .env("GITHUB_APP_ID", "1")
                .env(
                    "GITHUB_APP_PRIVATE_KEY",
                    "not needed before the platform loads",
                )
                .arg("--platform")
                .arg(&dir)
                .args(args));
            assert_eq!(code, 2, "{name}: {args:?}\n{out}{err}");
            assert!(
                err.contains(at.as_str()),
                "{name}: {args:?} does not name {at}:\n{err}"
            );
            assert!(
                !tmp.path().join("gitops").exists(),
                "{name}: {args:?} created the repository"
            );
        }
    }
    // The version mismatch says what to do.
    let (_, _, err) = run(bin()
        .arg("--platform")
        .arg(tmp.path().join("kubernetes"))
        .args(["check", EXAMPLES[0]]));
    assert!(
        err.contains("checks against Kubernetes 1.35") && err.contains("hint:"),
        "{err}"
    );
}

#[test]
fn an_invalid_gitops_render_today_is_refused() {
    for bad in ["tomorrow", "2026-13-01", "2026-06-01T00:00:00Z", ""] {
        for args in [
            vec!["check", EXAMPLES[0]],
            vec!["validate", EXAMPLES[0]],
            vec!["policy", "test"],
        ] {
            let (code, out, err) = run(bin().env("GITOPS_RENDER_TODAY", bad).args(&args));
            assert_eq!(code, 2, "{bad:?} {args:?}: {out}{err}");
            assert!(
                err.contains(&format!(
                    "GITOPS_RENDER_TODAY={bad:?} is not a date (YYYY-MM-DD)"
                )),
                "{err}"
            );
            assert_eq!(out, "");
        }
    }
    // A valid date is used as given: the same waiver is live on its last day, expired after.
    let (code, _, err) = run(bin()
        .env("GITOPS_RENDER_TODAY", "2030-01-01")
        .args(["check", EXAMPLES[0]]));
    assert_eq!(code, 0, "{err}");
}

/// `-` reads standard input, for validate and render alike; findings on it name `-` as
/// their file `<stdin>`, with the line in the stream.
#[test]
fn validate_and_render_read_standard_input() {
    let values = std::fs::read(root().join(EXAMPLES[1])).unwrap();
    let (code, rendered, err) = run(bin()
        .args(["render", "-", "--env", "prod"])
        .write_stdin(values.clone()));
    assert_eq!(code, 0, "{err}");
    let (code, from_file, _) = run(bin().args(["render", EXAMPLES[1], "--env", "prod"]));
    assert_eq!(code, 0);
    assert_eq!(
        rendered, from_file,
        "stdin and the file render the same bytes"
    );
    assert!(rendered.contains("kind: Deployment"), "{rendered}");

    let (code, out, err) = run(bin()
        .args([
            "validate",
            "-",
            "--team",
            "payments",
            "--env",
            "prod",
            "--app",
            "ledger-worker",
        ])
        .write_stdin(rendered.clone()));
    assert_eq!(code, 0, "{out}{err}");
    // A broken object on stdin is found at its line of stdin.
    let broken = rendered.replacen("  replicas:", "  replicaz:", 1);
    let line = broken.lines().position(|l| l.contains("replicaz")).unwrap() + 1;
    let (code, out, _) = run(bin()
        .args(["validate", "-", "--output", "json"])
        .write_stdin(broken));
    assert_eq!(code, 1, "{out}");
    let json: Value = serde_json::from_str(&out).unwrap();
    let f = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "kube-unknown-field")
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(f["file"], "<stdin>");
    assert_eq!(f["line"], line);
    // Bad values on stdin are rejected with their line too, and write nothing.
    let (code, out, err) = run(bin()
        .args(["render", "-", "--env", "prod"])
        .write_stdin("app: a\nreplcias: 3\n"));
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert!(err.contains("--> <stdin>:2:1"), "{err}");
}

/// An object that claims a team nobody registered, pulling from a registry no team
/// owns: rejected by validate (team-unknown), not waved through because there is no
/// registry entry to judge its image by.
#[test]
fn validate_rejects_an_object_of_an_unknown_team() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("m.yaml");
    std::fs::write(
        &file,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: miner\n  namespace: ghost-prod\n  labels: {app.kubernetes.io/name: miner, app.kubernetes.io/managed-by: kubectl, team: ghost}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app.kubernetes.io/name: miner}}\n  template:\n    metadata:\n      labels: {app.kubernetes.io/name: miner, app.kubernetes.io/managed-by: kubectl, team: ghost}\n    spec:\n      containers:\n        - name: miner\n          image: docker.io/evil/miner:1.0\n",
    )
    .unwrap();
    let (code, out, err) = run(bin_in(tmp.path()).args(["validate", "m.yaml", "--output", "json"]));
    assert_eq!(code, 1, "{out}{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    let f = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "team-unknown")
        .unwrap_or_else(|| panic!("no team-unknown in {out}"));
    assert_eq!(f["severity"], "error");
    assert_eq!(f["resource"], "Deployment/miner");
    assert_eq!(f["file"], "m.yaml");
    assert!(f["message"].as_str().unwrap().contains("\"ghost\""), "{f}");
    // A registered team's label is judged by its registry entry, as before.
    std::fs::write(
        &file,
        std::fs::read_to_string(&file)
            .unwrap()
            .replace("team: ghost", "team: payments"),
    )
    .unwrap();
    let (code, out, _) = run(bin_in(tmp.path()).args(["validate", "m.yaml", "--output", "json"]));
    assert_eq!(code, 1);
    assert!(
        out.contains("image-registry") && !out.contains("team-unknown"),
        "{out}"
    );
}
