//! What the standard platform renders: pinned by snapshots, and proven against the
//! strict Kubernetes API schema for every archetype in every environment.

use gitops_render::check::{check, Request};
use gitops_render::platform::Platform;
use gitops_render::validate::kube;

const EXAMPLES: [&str; 3] = ["payments-api", "ledger-worker", "nightly-report"];

fn render(
    platform: &Platform,
    app: &str,
    env: &str,
    tag: Option<&str>,
) -> gitops_render::render::Rendering {
    let path = format!("{}/examples/{app}.yaml", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap();
    let checked = check(
        platform,
        &Request {
            path: &path,
            bytes: &bytes,
            env,
            tag,
            source_repo: Some("acme/payments-api"),
            actor: None,
        },
    )
    .unwrap();
    assert!(checked.ok(), "{app}/{env}: {:?}", checked.report.findings);
    checked.rendering.unwrap()
}

#[test]
fn every_rendered_object_passes_the_strict_api_schema() {
    let platform = Platform::resolve(None).unwrap();
    let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
    for app in EXAMPLES {
        for env in &platform.settings.environments {
            for tag in [None, Some(digest.as_str())] {
                let rendering = render(&platform, app, env, tag);
                assert!(rendering.manifests.len() >= 3, "{app}/{env}");
                for m in &rendering.manifests {
                    let issues = kube::check(&m.object);
                    assert!(issues.is_empty(), "{app}/{env} {}: {issues:?}", m.file);
                }
            }
        }
    }
}

#[test]
fn rendered_files_are_pinned() {
    let platform = Platform::resolve(None).unwrap();
    for app in EXAMPLES {
        let rendering = render(&platform, app, "prod", None);
        let mut all = String::new();
        for (name, bytes) in &rendering.files {
            all.push_str(&format!("### {name}\n{}", String::from_utf8_lossy(bytes)));
        }
        insta::assert_snapshot!(format!("{app}-prod"), all);
    }
}
