//! The platform's Rego policies, evaluated with regorus, and their unit-test runner.
//!
//! Contract with policy authors (see docs/rules.md for the shipped rules):
//! - `policies/<area>.rego` declares `package gitops.<area>` with `deny contains f` (an
//!   error) and `warn contains f` (a warning) rules, where `f` is an object
//!   `{"rule": id, "message": text, "field"?: values path, "resource"?: "Kind/name"}`;
//! - `input` is `{values, manifests, context: {app, env, team, source_repo, actor}}`;
//! - every `policies/<name>.yaml` but `exceptions.yaml` is `data.<name>`;
//! - `policies/<area>_test.rego` holds `test_*` rules, run by `gitops-render policy test`.
//!
//! The engine is built and prepared once per process, with policies and data loaded and
//! one generated rule that gathers every `deny` and `warn`; evaluations ask for that
//! rule only, on engines reused from file to file (see [`Evaluator`], and BENCHMARKS.md
//! for what each choice was measured at).

use serde_json::Value;

use crate::error::{Error, Result};
use crate::findings::Severity;
use crate::platform::{read_yaml, PlatformFiles};

// `gitops-render policy test`: the unit-test runner and its line coverage.
mod runner;
pub use runner::{FileCoverage, TestResult, TestRun};

/// A policy's verdict on one input: a deny or warn entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub rule: String,
    pub severity: Severity,
    pub message: String,
    /// A dotted values path, when a values field is the cause.
    pub field: Option<String>,
    /// `Kind/name` of the object concerned, when the policy says; a finding made by
    /// `lib.finding_at` gives `object` instead, and the caller names it from that
    /// (`policy_verdict`, `validate`).
    pub resource: Option<String>,
    /// The index in `input.manifests` of the object concerned, when the policy says
    /// (`lib.finding_at`): findings are attached by identity, never by name.
    pub object: Option<usize>,
    /// A JSON pointer into that object to the offending field.
    pub path: Option<String>,
}

/// How the policies are evaluated. Every command uses [`Evaluator::DEFAULT`], the
/// interpreter asked for the one rule that gathers every `deny` and `warn`.
/// `tests/it/policy_paths.rs` runs every input the project has through all three and
/// requires the default to agree with the whole-tree query it replaced; `benches/` and
/// `GITOPS_RENDER_POLICY_EVALUATOR` compare their speed.
///
/// The compiled form is not the default because its verdicts differ: on a pod without
/// any securityContext, regorus 0.14's VM drops `pss-run-as-non-root` and `pss-seccomp`,
/// whose bodies go through `lib.effective` (a function with an `else`, undefined there)
/// under `not` or inside another function's `else` chain; the interpreter, like OPA,
/// reports both. The test prints where they differ and refuses a default that differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evaluator {
    /// regorus's compiled form (its register VM, the `rvm` feature): one program whose
    /// one entry point is the gathering rule, run on VMs reused across files. Built the
    /// first time it is asked for, so nothing else pays for compiling it.
    Compiled,
    /// The interpreter, asked for the gathering rule on an engine reused across files.
    Interpreter,
    /// The interpreter, asked for the whole `data.gitops` tree (before issue 13).
    WholeTree,
}

impl Evaluator {
    pub const DEFAULT: Evaluator = Evaluator::Interpreter;

    /// `GITOPS_RENDER_POLICY_EVALUATOR=compiled|interpreter|tree`, to compare the
    /// evaluators on the real binary (`benches/fleet.sh`); anything else, or nothing, is
    /// the default.
    fn from_env() -> Self {
        match std::env::var("GITOPS_RENDER_POLICY_EVALUATOR").as_deref() {
            Ok("compiled") => Evaluator::Compiled,
            Ok("tree") => Evaluator::WholeTree,
            _ => Evaluator::DEFAULT,
        }
    }
}

/// The package of the one rule that gathers every finding rule: outside `data.gitops`,
/// so the whole-tree query does not see it, and named so no platform's data collides.
const GATHER_PACKAGE: &str = "gitops_render_internal_findings";
const GATHER_RULE: &str = "data.gitops_render_internal_findings.found";

pub struct Policies {
    /// Policies and data loaded and prepared; the interpreter forms evaluate on clones
    /// of it (kept in `engines` for reuse), and the compiled form is made from it.
    engine: regorus::Engine,
    /// The compiled form, built on first use: one program, entry point [`GATHER_RULE`].
    compiled: std::sync::OnceLock<std::result::Result<Compiled, String>>,
    evaluator: Evaluator,
    /// Prepared VMs and engines not in use. A fleet check takes one per rayon thread and
    /// gives it back, so each thread reuses its VM's buffers instead of building a new
    /// one per file; there are never more than there were threads at once.
    vms: std::sync::Mutex<Vec<regorus::rvm::RegoVM>>,
    engines: std::sync::Mutex<Vec<regorus::Engine>>,
    /// `(path, text)` of the test files, kept for `policy test`.
    tests: Vec<(String, String)>,
    /// `(path, text)` of the policy files.
    sources: Vec<(String, String)>,
    /// `(path, text)` of `policies/deploy/*.rego` (tests are in `tests`).
    deploy_sources: Vec<(String, String)>,
    /// Who may deploy what where, through `serve`'s deploy API: loaded the first time
    /// [`Policies::deploy`] is asked (only `serve` asks), so no other command pays for
    /// parsing and trying it.
    deploy: std::sync::OnceLock<std::result::Result<Option<DeployPolicy>, String>>,
    data: regorus::Value,
}

/// Where the deploy API's authorization policy lives.
pub const DEPLOY_DIR: &str = "policies/deploy/";
/// Its rule: a set of reasons (strings) to refuse the request.
const DEPLOY_RULE: &str = "data.deploy.deny";

/// `policies/deploy/*.rego`: `package deploy`, whose `deny` set of strings refuses a
/// request of the deploy API. Input: `{claims, issuer, identity, request: {app, team,
/// env, intent}, team, platform}` (see docs/deploy-api.md).
pub struct DeployPolicy {
    engine: regorus::Engine,
}

impl DeployPolicy {
    fn load(sources: &[(String, String)], data: &regorus::Value) -> Result<Option<DeployPolicy>> {
        if sources.is_empty() {
            return Ok(None);
        }
        let mut engine = regorus::Engine::new();
        engine.set_strict_builtin_errors(false);
        for (path, text) in sources {
            engine
                .add_policy(path.clone(), text.clone())
                .map_err(|e| Error::platform(format!("policy error: {e}")))?;
        }
        engine
            .add_data(data.clone())
            .map_err(|e| Error::platform(format!("policy data error: {e}")))?;
        let policy = DeployPolicy { engine };
        // As for the manifest policies: a policy that fails at evaluation time is a
        // platform error at startup, not at the first deploy.
        policy.deny(&serde_json::json!({
            "claims": {}, "issuer": "", "identity": {}, "platform": {},
            "request": {"app": "", "team": "", "env": "", "intent": "deploy"}, "team": null
        }))?;
        Ok(Some(policy))
    }

    /// The reasons to refuse `input`, sorted; empty: allowed.
    pub fn deny(&self, input: &Value) -> Result<Vec<String>> {
        let mut engine = self.engine.clone();
        engine.set_input(regorus::Value::from(input.clone()));
        let found = engine
            .eval_rule(DEPLOY_RULE.to_string())
            .map_err(|e| Error::platform(format!("deploy policy evaluation failed: {e}")))?;
        let found = to_json(&found)?;
        let mut reasons = Vec::new();
        match found {
            Value::Null => {}
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::String(s) => reasons.push(s),
                        other => {
                            return Err(Error::platform(format!(
                                "{DEPLOY_RULE} must hold strings, found {other}"
                            )))
                        }
                    }
                }
            }
            other => {
                return Err(Error::platform(format!(
                    "{DEPLOY_RULE} must be a set of strings, found {other}"
                )))
            }
        }
        reasons.sort();
        Ok(reasons)
    }
}

struct Compiled {
    policy: regorus::CompiledPolicy,
    program: std::sync::Arc<regorus::rvm::Program>,
}

fn is_test(rel: &str) -> bool {
    rel.ends_with("_test.rego")
}

fn rego_error(files: &PlatformFiles, e: impl std::fmt::Display) -> Error {
    // regorus reports `path:line:col: error: ...` with the path we gave it; we gave it
    // the display path, so the message already points at the file.
    let _ = files;
    Error::platform(format!("policy error: {e}"))
}

/// The rule paths of every `deny` and `warn` rule of every `gitops.*` package, sorted:
/// exactly the sets the whole-tree query used to find.
fn finding_rules(engine: &regorus::Engine) -> Result<Vec<String>> {
    let mut paths = std::collections::BTreeSet::new();
    let packages = engine
        .get_policy_package_components()
        .map_err(|e| Error::platform(format!("policy error: {e}")))?;
    for package in packages {
        if package.components.first().map(String::as_str) != Some("gitops") {
            continue;
        }
        for root in ["deny", "warn"] {
            let declared = engine
                .has_declared_rule_rooted_at(&package.source_file, root)
                .map_err(|e| Error::platform(format!("policy error: {e}")))?;
            if declared {
                let mut path = "data".to_string();
                for c in package.components.iter().map(String::as_str).chain([root]) {
                    if !c.is_empty()
                        && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
                        && !c.starts_with(|ch: char| ch.is_ascii_digit())
                    {
                        path.push('.');
                        path.push_str(c);
                    } else {
                        path.push_str(&format!("[{}]", Value::String(c.to_string())));
                    }
                }
                paths.insert(path);
            }
        }
    }
    Ok(paths.into_iter().collect())
}

/// The gathering module: one partial-object entry per finding rule, keyed by the rule's
/// path, so one evaluation computes every rule and the helpers they share once.
fn gather_module(rules: &[String]) -> String {
    let mut text = format!("package {GATHER_PACKAGE}\n\n");
    for path in rules {
        // A variable key makes `found` itself the rule (a constant key would make a
        // rule of each `found[key]`), one definition per finding rule.
        text.push_str(&format!(
            "found[k] := v if {{\n\tk := {}\n\tv := {path}\n}}\n",
            Value::String(path.clone())
        ));
    }
    if rules.is_empty() {
        text.push_str("found := {}\n");
    }
    text
}

impl Policies {
    pub fn load(files: &PlatformFiles) -> Result<Self> {
        let mut engine = regorus::Engine::new();
        engine.set_strict_builtin_errors(false);
        let mut tests = Vec::new();
        let mut sources = Vec::new();
        let mut deploy_sources = Vec::new();
        for (rel, text) in files.under("policies/") {
            // `policies/deploy/` judges who may deploy, on another input: never a
            // manifest policy, but tested and covered with the others.
            if rel.ends_with(".rego")
                && rel.starts_with(DEPLOY_DIR)
                && !rel[DEPLOY_DIR.len()..].contains('/')
            {
                if is_test(rel) {
                    tests.push((files.display_path(rel), text.to_string()));
                } else {
                    deploy_sources.push((files.display_path(rel), text.to_string()));
                }
                continue;
            }
            if !rel.ends_with(".rego") || rel["policies/".len()..].contains('/') {
                continue;
            }
            if is_test(rel) {
                tests.push((files.display_path(rel), text.to_string()));
                continue;
            }
            engine
                .add_policy(files.display_path(rel), text.to_string())
                .map_err(|e| rego_error(files, e))?;
            sources.push((files.display_path(rel), text.to_string()));
        }
        if sources.is_empty() {
            return Err(Error::platform(format!(
                "platform ({}) has no policies: expected policies/*.rego",
                files.origin
            )));
        }
        let mut data = serde_json::Map::new();
        for (rel, _) in files.under("policies/") {
            let Some(stem) = rel
                .strip_prefix("policies/")
                .and_then(|n| n.strip_suffix(".yaml"))
            else {
                continue;
            };
            if stem == "exceptions" || stem.contains('/') {
                continue;
            }
            data.insert(stem.to_string(), read_yaml(files, rel)?);
        }
        let data = regorus::Value::from(Value::Object(data));
        engine
            .add_data(data.clone())
            .map_err(|e| rego_error(files, e))?;
        let rules = finding_rules(&engine)?;
        engine
            .add_policy(
                format!("<gitops-render>/{GATHER_PACKAGE}.rego"),
                gather_module(&rules),
            )
            .map_err(|e| rego_error(files, e))?;
        let evaluator = Evaluator::from_env();
        let failed = |e: &dyn std::fmt::Display| {
            Error::platform(format!("policy evaluation failed ({}): {e}", files.origin))
        };
        let mut policies = Policies {
            engine,
            compiled: Default::default(),
            evaluator,
            vms: Default::default(),
            engines: Default::default(),
            tests,
            sources,
            deploy_sources,
            deploy: Default::default(),
            data,
        };
        // Evaluate once now: a policy that fails at evaluation time (a bad builtin call,
        // a conflict) is a platform error before any values file is looked at, not
        // mid-fleet. On the engine itself this also prepares it (rule analysis,
        // scheduling, loop hoisting) for every clone made from it.
        let empty = serde_json::json!({"values": {}, "manifests": [], "context": {}});
        policies
            .engine
            .set_input(regorus::Value::from(empty.clone()));
        match evaluator {
            Evaluator::WholeTree => {
                policies
                    .engine
                    .eval_query("data.gitops".to_string(), false)
                    .map_err(|e| failed(&e))?;
            }
            Evaluator::Interpreter => {
                policies
                    .engine
                    .eval_rule(GATHER_RULE.to_string())
                    .map_err(|e| failed(&e))?;
            }
            Evaluator::Compiled => {
                policies
                    .evaluate_with(Evaluator::Compiled, empty)
                    .map_err(|e| failed(&e))?;
            }
        }
        Ok(policies)
    }

    /// Evaluates every `gitops.*` package's `deny` and `warn` against one input. The
    /// input is taken, not borrowed: regorus converts it by value, and a `validate` batch
    /// is hundreds of objects, so a copy here would be the third of each.
    pub fn evaluate(&self, input: Value) -> Result<Vec<Hit>> {
        self.evaluate_with(self.evaluator, input)
    }

    /// [`Policies::evaluate`] with a chosen evaluator: for the test that proves they
    /// agree, and for benchmarks.
    pub fn evaluate_with(&self, evaluator: Evaluator, input: Value) -> Result<Vec<Hit>> {
        let failed =
            |e: &dyn std::fmt::Display| Error::platform(format!("policy evaluation failed: {e}"));
        let input = regorus::Value::from(input);
        let mut hits = Vec::new();
        match evaluator {
            Evaluator::Compiled => {
                let mut vm = self.take_vm()?;
                vm.set_input(input);
                let result = vm.execute_entry_point_by_index(0);
                // Drop the input now rather than hold it until the next file.
                vm.set_input(regorus::Value::Null);
                self.vms.lock().expect("not poisoned").push(vm);
                gathered_hits(&result.map_err(|e| failed(&e))?, &mut hits)?;
            }
            Evaluator::Interpreter => {
                let mut engine = self.take_engine();
                engine.set_input(input);
                let result = engine.eval_rule(GATHER_RULE.to_string());
                engine.set_input(regorus::Value::Null);
                self.engines.lock().expect("not poisoned").push(engine);
                gathered_hits(&result.map_err(|e| failed(&e))?, &mut hits)?;
            }
            Evaluator::WholeTree => {
                let mut engine = self.take_engine();
                engine.set_input(input);
                let results = engine.eval_query("data.gitops".to_string(), false);
                engine.set_input(regorus::Value::Null);
                self.engines.lock().expect("not poisoned").push(engine);
                for result in results.map_err(|e| failed(&e))?.result {
                    for expr in result.expressions {
                        collect_hits(&to_json(&expr.value)?, &mut hits)?;
                    }
                }
            }
        }
        hits.sort_by(|a, b| (&a.rule, &a.message).cmp(&(&b.rule, &b.message)));
        hits.dedup();
        Ok(hits)
    }

    fn take_vm(&self) -> Result<regorus::rvm::RegoVM> {
        if let Some(vm) = self.vms.lock().expect("not poisoned").pop() {
            return Ok(vm);
        }
        let compiled = self
            .compiled
            .get_or_init(|| {
                let mut engine = self.engine.clone();
                let entry: regorus::Rc<str> = GATHER_RULE.into();
                let policy = engine
                    .compile_with_entrypoint(&entry)
                    .map_err(|e| e.to_string())?;
                let program = regorus::languages::rego::compiler::Compiler::compile_from_policy(
                    &policy,
                    &[GATHER_RULE],
                )
                .map_err(|e| e.to_string())?;
                Ok(Compiled { policy, program })
            })
            .as_ref()
            .map_err(|e| Error::platform(format!("policy compilation failed: {e}")))?;
        let mut vm = regorus::rvm::RegoVM::new_with_policy(compiled.policy.clone());
        vm.load_program(compiled.program.clone());
        vm.set_data(self.data.clone())
            .map_err(|e| Error::platform(format!("policy data error: {e}")))?;
        // The interpreter has no instruction budget; the VM's default (25,000) would
        // fail a large app's policies, so the two would disagree.
        vm.set_max_instructions(usize::MAX);
        Ok(vm)
    }

    fn take_engine(&self) -> regorus::Engine {
        self.engines
            .lock()
            .expect("not poisoned")
            .pop()
            .unwrap_or_else(|| self.engine.clone())
    }

    /// The deploy API's policy; `None` when the platform has no `policies/deploy/`. An
    /// error is the policy's (a parse error, or a failure on a sample request), the same
    /// on every call: `serve` asks at startup, so a broken one stops it there.
    pub fn deploy(&self) -> Result<Option<&DeployPolicy>> {
        self.deploy
            .get_or_init(|| {
                DeployPolicy::load(&self.deploy_sources, &self.data).map_err(|e| e.message)
            })
            .as_ref()
            .map(Option::as_ref)
            .map_err(|message| Error::platform(message.clone()))
    }

    pub fn sources(&self) -> &[(String, String)] {
        &self.sources
    }
}

fn to_json(value: &regorus::Value) -> Result<Value> {
    serde_json::to_value(value)
        .map_err(|e| Error::internal(format!("policy result is not JSON: {e}")))
}

/// The gathering rule's object, `{rule path: its value}`: each `deny`/`warn` set (an
/// array once in JSON) gives its hits; anything else is no finding, as in the whole tree.
fn gathered_hits(found: &regorus::Value, hits: &mut Vec<Hit>) -> Result<()> {
    let Value::Object(map) = to_json(found)? else {
        return Ok(());
    };
    for (path, value) in map {
        let severity = if path.ends_with(".warn") || path.ends_with("[\"warn\"]") {
            Severity::Warning
        } else {
            Severity::Error
        };
        if let Value::Array(entries) = value {
            for entry in &entries {
                hits.push(hit_from(entry, severity)?);
            }
        }
    }
    Ok(())
}

/// Walks `data.gitops` for `deny` and `warn` sets, in every package and subpackage.
fn collect_hits(node: &Value, hits: &mut Vec<Hit>) -> Result<()> {
    let Value::Object(map) = node else {
        return Ok(());
    };
    for (key, value) in map {
        let severity = match key.as_str() {
            "deny" => Some(Severity::Error),
            "warn" => Some(Severity::Warning),
            _ => None,
        };
        match (severity, value) {
            (Some(severity), Value::Array(entries)) => {
                for entry in entries {
                    hits.push(hit_from(entry, severity)?);
                }
            }
            (None, Value::Object(_)) => collect_hits(value, hits)?,
            _ => {}
        }
    }
    Ok(())
}

fn hit_from(entry: &Value, severity: Severity) -> Result<Hit> {
    let text = |k: &str| entry.get(k).and_then(Value::as_str).map(str::to_string);
    match (text("rule"), text("message").or_else(|| text("msg"))) {
        (Some(rule), Some(message)) => {
            let (object, path) = hit_location(entry);
            Ok(Hit {
                rule,
                severity,
                message,
                field: text("field"),
                resource: text("resource"),
                object,
                path,
            })
        }
        // A bare string is allowed, as conftest allows it, with a generic rule id.
        _ => match entry.as_str() {
            Some(message) => Ok(Hit {
                rule: "policy".into(),
                severity,
                message: message.into(),
                field: None,
                resource: None,
                object: None,
                path: None,
            }),
            None => Err(Error::platform(format!(
                "a policy returned {entry}; deny/warn entries must be objects with `rule` and `message`"
            ))),
        },
    }
}

/// The object (`object`: its index in `input.manifests`) and the field in it (`path`:
/// an array of keys and indices) a deny/warn entry names, as `lib.finding_at` writes
/// them. The path becomes a JSON pointer.
fn hit_location(entry: &Value) -> (Option<usize>, Option<String>) {
    let object = entry
        .get("object")
        .and_then(Value::as_u64)
        .and_then(|i| usize::try_from(i).ok());
    let path = entry.get("path").and_then(Value::as_array).map(|segments| {
        let mut pointer = String::new();
        for s in segments {
            pointer.push('/');
            match s {
                Value::String(k) => pointer.push_str(&crate::pointer::escape(k)),
                Value::Number(n) => pointer.push_str(&n.to_string()),
                other => pointer.push_str(&other.to_string()),
            }
        }
        pointer
    });
    (object, path)
}
