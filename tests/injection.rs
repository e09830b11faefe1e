//! A team value is data, never YAML: whatever characters a value holds, it cannot add,
//! remove or rename a field of any rendered object. Every string field of the values
//! file gets every hostile string; each result is either a rejection with findings or a
//! rendering whose shape (the set of JSON pointers of every object) is exactly the
//! shape of the benign rendering, with the hostile string intact where it belongs.

use std::collections::BTreeSet;

use gitops_render::check::{check, Request};
use gitops_render::platform::Platform;
use serde_json::Value;

#[path = "corpus/hostile.rs"]
mod hostile;
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
