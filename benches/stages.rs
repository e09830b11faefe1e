//! In-process cost of each stage of the pipeline, on the example web service:
//! `cargo bench --bench stages`. Whole-process figures come from `benches/fleet.sh`.
//!
//! Every benchmark also reports its allocations (divan's allocation profiler wraps the
//! allocator the binary uses), and the policy stage runs once per evaluator, so a
//! change to either shows up here first.

use gitops_render::check::{check, Request};
use gitops_render::platform::{Platform, PlatformFiles};
use gitops_render::render::{self, Templates};
use gitops_render::validate::policy::{Evaluator, Policies};
use gitops_render::validate::{self, kube, Context};
use gitops_render::values::{self, Resolve, ValuesSchema};
use gitops_render::yaml;

#[global_allocator]
static ALLOC: divan::AllocProfiler<gitops_render::Allocator> =
    divan::AllocProfiler::new(gitops_render::ALLOCATOR);

const VALUES: &str = include_str!("../examples/payments-api.yaml");

fn main() {
    divan::main();
}

fn platform() -> &'static Platform {
    static P: std::sync::OnceLock<Platform> = std::sync::OnceLock::new();
    P.get_or_init(|| Platform::resolve(None).expect("the built-in platform loads"))
}

fn resolve() -> Resolve<'static> {
    Resolve {
        env: "prod",
        tag: None,
    }
}

#[divan::bench]
fn load_platform() -> Platform {
    Platform::resolve(None).unwrap()
}

/// The parts of `load_platform`, to see which one startup pays for.
mod load {
    use super::*;

    #[divan::bench]
    fn files() -> PlatformFiles {
        PlatformFiles::builtin()
    }

    #[divan::bench]
    fn values_schema(bencher: divan::Bencher) {
        let files = PlatformFiles::builtin();
        bencher.bench(|| ValuesSchema::load(&files).unwrap());
    }

    #[divan::bench]
    fn templates(bencher: divan::Bencher) {
        let files = PlatformFiles::builtin();
        bencher.bench(|| Templates::load(&files).unwrap());
    }

    #[divan::bench]
    fn policies(bencher: divan::Bencher) {
        let files = PlatformFiles::builtin();
        bencher.bench(|| Policies::load(&files).unwrap());
    }
}

#[divan::bench]
fn parse_yaml() -> Vec<yaml::Document> {
    yaml::parse_stream(divan::black_box(VALUES), yaml::Limits::VALUES).unwrap()
}

#[divan::bench]
fn values_schema() -> bool {
    let (_, findings, accepted) = values::load(platform(), "v.yaml", VALUES.as_bytes(), resolve());
    findings.is_empty() && accepted.is_some()
}

#[divan::bench]
fn render_templates(bencher: divan::Bencher) {
    let p = platform();
    let (_, _, accepted) = values::load(p, "v.yaml", VALUES.as_bytes(), resolve());
    let accepted = accepted.unwrap();
    bencher.bench(|| render::render(&p.templates, &p.settings, &accepted).unwrap());
}

#[divan::bench]
fn api_schema(bencher: divan::Bencher) {
    let p = platform();
    let (_, _, accepted) = values::load(p, "v.yaml", VALUES.as_bytes(), resolve());
    let rendering = render::render(&p.templates, &p.settings, &accepted.unwrap()).unwrap();
    bencher.bench(|| {
        rendering
            .manifests
            .iter()
            .map(|m| kube::check(&m.object).len())
            .sum::<usize>()
    });
}

/// The policy stage with each evaluator (see `validate::policy::Evaluator`).
#[divan::bench(args = ["compiled", "interpreter", "tree"])]
fn policies(bencher: divan::Bencher, evaluator: &str) {
    let evaluator = match evaluator {
        "compiled" => Evaluator::Compiled,
        "interpreter" => Evaluator::Interpreter,
        _ => Evaluator::WholeTree,
    };
    let p = platform();
    let (_, _, accepted) = values::load(p, "v.yaml", VALUES.as_bytes(), resolve());
    let accepted = accepted.unwrap();
    let rendering = render::render(&p.templates, &p.settings, &accepted).unwrap();
    let objects: Vec<&serde_json::Value> = rendering.manifests.iter().map(|m| &m.object).collect();
    let context = Context {
        app: Some(accepted.app.clone()),
        env: Some("prod".into()),
        team: Some(accepted.team.clone()),
        source_repo: None,
        actor: None,
    };
    let input = validate::policy_input(&accepted.effective, &objects, &context);
    // The input is made outside the timing: callers build it and hand it over.
    bencher.with_inputs(|| input.clone()).bench_values(|input| {
        p.policies()
            .unwrap()
            .evaluate_with(evaluator, input)
            .unwrap()
    });
}

#[divan::bench]
fn whole_check() -> bool {
    check(
        platform(),
        &Request {
            path: "v.yaml",
            bytes: VALUES.as_bytes(),
            env: "prod",
            tag: None,
            source_repo: None,
            actor: None,
        },
    )
    .unwrap()
    .ok()
}
