//! A team value is data, never YAML: whatever characters a value holds, it cannot add,
//! remove or rename a field of any rendered object. Every string field of the values
//! file gets every hostile string; each result is either a rejection with findings or a
//! rendering whose shape (the set of JSON pointers of every object) is exactly the
//! shape of the benign rendering, with the hostile string intact where it belongs.

use crate::common;

use std::collections::BTreeSet;

use gitops_render::check::{check, Request};
use gitops_render::platform::Platform;
use serde_json::Value;

use crate::common::hostile;
use hostile::{values, HOSTILE};

fn pointers(v: &Value, prefix: String, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                pointers(child, format!("{prefix}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                pointers(child, format!("{prefix}/{i}"), out);
            }
        }
        _ => {
            out.insert(prefix);
        }
    }
}

fn shape(platform: &Platform, text: &str) -> Option<(BTreeSet<String>, Vec<Value>)> {
    let checked = check(
        platform,
        &Request {
            path: "values.yaml",
            bytes: text.as_bytes(),
            env: "prod",
            tag: None,
            source_repo: None,
            actor: None,
        },
    )
    .expect("a hostile value must never break the platform");
    let rendering = checked.rendering?;
    let mut set = BTreeSet::new();
    for m in &rendering.manifests {
        pointers(&m.object, m.file.clone(), &mut set);
    }
    Some((
        set,
        rendering.manifests.into_iter().map(|m| m.object).collect(),
    ))
}

#[test]
fn no_value_can_change_the_shape_of_the_output() {
    let platform = Platform::resolve(None).unwrap();
    let (benign, _) =
        shape(&platform, &values("env.value", "info")).expect("the benign values render");
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
    let mut accepted = 0;
    for field in fields {
        for hostile in HOSTILE {
            let text = values(field, hostile);
            let Some((got, objects)) = shape(&platform, &text) else {
                continue; // rejected by the schema: nothing rendered, nothing injected
            };
            accepted += 1;
            assert_eq!(
                got, benign,
                "{field} = {hostile:?} changed the output's shape"
            );
            if field == "env.value" {
                let env = objects
                    .iter()
                    .find(|o| o["kind"] == "Deployment")
                    .unwrap()
                    .pointer("/spec/template/spec/containers/0/env")
                    .unwrap()
                    .clone();
                assert_eq!(
                    env[0]["value"],
                    Value::String(hostile.to_string()),
                    "the value arrives intact"
                );
            }
        }
    }
    // Free-text env values accept every one of them: the proof is not vacuous.
    assert!(
        accepted >= HOSTILE.len(),
        "only {accepted} hostile values were accepted"
    );
}

#[test]
fn control_characters_that_yaml_folds_are_refused() {
    let platform = Platform::resolve(None).unwrap();
    for bad in [
        "a\u{85}b",
        "a\u{2028}b",
        "a\u{2029}b",
        "a\u{1b}[31mred",
        "a\rb",
    ] {
        assert!(
            shape(&platform, &values("env.value", bad)).is_none(),
            "{bad:?} was accepted"
        );
    }
}

/// Whether YAML reads `s`, written bare, back as exactly `s` (a conservative version of
/// the plain-scalar rules: no indicator characters, no edge whitespace, not a word YAML
/// would type as a number, boolean or null).
fn plain_is_safe(s: &str) -> bool {
    !s.is_empty()
        && s.trim() == s
        && !s.starts_with(['-', '?', ':', ' '])
        && !s.contains(|c: char| ":#{}[],&*!|>'\"%@`\\".contains(c) || c.is_control())
        && s.parse::<f64>().is_err()
        && !["true", "false", "null", "yes", "no", "on", "off", "~"]
            .contains(&s.to_lowercase().as_str())
}

/// The same proof on the bytes the binary writes: for every hostile env value, every
/// file `render --out` writes, and every file `deploy` commits, is byte for byte the
/// benign rendering with the benign value replaced by one YAML scalar holding the hostile
/// value: its JSON string, or the value itself where a bare scalar is safe. Nothing else
/// in any file moves: no line added, no field added, no document split.
#[test]
fn the_files_render_and_deploy_write_differ_from_the_benign_ones_only_in_the_value() {
    const MARK: &str = "benign-marker-value";
    let tmp = tempfile::tempdir().unwrap();
    let render = |name: &str, value: &str| -> std::collections::BTreeMap<String, Vec<u8>> {
        let values = tmp.path().join(format!("{name}.yaml"));
        std::fs::write(&values, self::values("env.value", value)).unwrap();
        let out = tmp.path().join(format!("out-{name}"));
        let (code, stdout, stderr) = common::run(
            common::bin_in(tmp.path())
                .args(["render", "--env", "prod", "--out"])
                .arg(&out)
                .arg(&values),
        );
        assert_eq!(code, 0, "{value:?}: {stdout}{stderr}");
        std::fs::read_dir(&out)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect()
    };
    let benign = render("benign", MARK);
    let carriers: Vec<&String> = benign
        .iter()
        .filter(|(_, b)| String::from_utf8_lossy(b).contains(MARK))
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        carriers,
        ["deployment-payments-api.yaml", "values.yaml"],
        "the value is written once into the Deployment and once into values.yaml"
    );
    // `bytes` is `benign` with the marker replaced by one scalar that holds `hostile`.
    let holds = |name: &str, bytes: &[u8], hostile: &str| {
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let original = String::from_utf8(benign[name].clone()).unwrap();
        let Some((before, after)) = original.split_once(MARK) else {
            assert_eq!(text, original, "{hostile:?} changed {name}");
            return;
        };
        assert!(
            text.starts_with(before)
                && text.ends_with(after)
                && text.len() >= before.len() + after.len(),
            "{hostile:?}: {name} differs outside the value:\n{text}"
        );
        let scalar = &text[before.len()..text.len() - after.len()];
        let json = serde_json::to_string(hostile).unwrap();
        assert!(
            scalar == json || (scalar == hostile && plain_is_safe(hostile)),
            "{hostile:?}: {name} holds it as {scalar:?}"
        );
    };
    let git = |args: &[&str]| -> Vec<u8> {
        let out = std::process::Command::new("git")
            .args(args)
            .env("HOME", tmp.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .current_dir(tmp.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let mut quoted = 0;
    for (i, hostile) in HOSTILE.iter().enumerate() {
        let got = render(&format!("hostile-{i}"), hostile);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            benign.keys().collect::<Vec<_>>(),
            "{hostile:?} changed the files written"
        );
        for (name, bytes) in &got {
            holds(name, bytes, hostile);
        }
        if String::from_utf8_lossy(&got["values.yaml"])
            .contains(&serde_json::to_string(hostile).unwrap())
        {
            quoted += 1;
        }
        // deploy commits the same files, holding the value the same way.
        let values = tmp.path().join(format!("hostile-{i}.yaml"));
        let (code, stdout, stderr) = common::run(
            common::bin_in(tmp.path())
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .args(["deploy", "--env", "prod", "--repo", "gitops"])
                .arg(&values),
        );
        assert_eq!(code, 0, "{hostile:?}: {stdout}{stderr}");
        let listing = git(&[
            "-C",
            "gitops",
            "ls-tree",
            "--name-only",
            "main:apps/payments-api/prod",
        ]);
        let names: Vec<String> = String::from_utf8(listing)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(
            names.iter().collect::<Vec<_>>(),
            got.keys().collect::<Vec<_>>(),
            "{hostile:?}: deploy committed other files"
        );
        for name in &names {
            let blob = git(&[
                "-C",
                "gitops",
                "show",
                &format!("main:apps/payments-api/prod/{name}"),
            ]);
            assert!(
                blob == got[name],
                "{hostile:?}: deploy and render --out disagree on {name}"
            );
        }
    }
    // Most hostile values need quoting; the proof exercised that path.
    assert!(quoted >= HOSTILE.len() - 3, "only {quoted} were quoted");
}
