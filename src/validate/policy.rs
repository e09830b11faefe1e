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

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::findings::Severity;
use crate::platform::{read_yaml, PlatformFiles};

/// A policy's verdict on one input: a deny or warn entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub rule: String,
    pub severity: Severity,
    pub message: String,
    /// A dotted values path, when a values field is the cause.
    pub field: Option<String>,
    /// `Kind/name` of the object concerned.
    pub resource: Option<String>,
}

/// How the policies are evaluated. Every command uses [`Evaluator::DEFAULT`], the
/// interpreter asked for the one rule that gathers every `deny` and `warn`.
/// `tests/policy_paths.rs` runs every input the project has through all three and
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
    data: regorus::Value,
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
        for (rel, text) in files.under("policies/") {
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
                    .evaluate_with(Evaluator::Compiled, &empty)
                    .map_err(|e| failed(&e))?;
            }
        }
        Ok(policies)
    }

    /// Evaluates every `gitops.*` package's `deny` and `warn` against one input.
    pub fn evaluate(&self, input: &Value) -> Result<Vec<Hit>> {
        self.evaluate_with(self.evaluator, input)
    }

    /// [`Policies::evaluate`] with a chosen evaluator: for the test that proves they
    /// agree, and for benchmarks.
    pub fn evaluate_with(&self, evaluator: Evaluator, input: &Value) -> Result<Vec<Hit>> {
        let failed =
            |e: &dyn std::fmt::Display| Error::platform(format!("policy evaluation failed: {e}"));
        let input = regorus::Value::from(input.clone());
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
        (Some(rule), Some(message)) => Ok(Hit {
            rule,
            severity,
            message,
            field: text("field"),
            resource: text("resource"),
        }),
        // A bare string is allowed, as conftest allows it, with a generic rule id.
        _ => match entry.as_str() {
            Some(message) => Ok(Hit {
                rule: "policy".into(),
                severity,
                message: message.into(),
                field: None,
                resource: None,
            }),
            None => Err(Error::platform(format!(
                "a policy returned {entry}; deny/warn entries must be objects with `rule` and `message`"
            ))),
        },
    }
}

// ---------------------------------------------------------------------------------
// `gitops-render policy test`

#[derive(Debug, Clone)]
pub struct TestResult {
    /// `data.gitops.pss_test.test_privileged_is_denied`
    pub name: String,
    pub file: String,
    pub line: u32,
    pub passed: bool,
    /// Why it failed, when evaluation itself failed.
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct FileCoverage {
    pub file: String,
    pub covered: usize,
    pub total: usize,
    pub not_covered: Vec<u32>,
}

#[derive(Debug, Clone, Default)]
pub struct TestRun {
    pub results: Vec<TestResult>,
    pub coverage: Vec<FileCoverage>,
}

impl TestRun {
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed).count()
    }
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }
}

impl Policies {
    /// Runs every `test_*` rule of every `*_test.rego`, each with a fresh engine so one
    /// test cannot leak into another, and measures line coverage of the policies.
    pub fn run_tests(&self, filter: Option<&str>) -> Result<TestRun> {
        let mut base = regorus::Engine::new();
        for (path, text) in self.sources.iter().chain(self.tests.iter()) {
            base.add_policy(path.clone(), text.clone())
                .map_err(|e| Error::platform(format!("policy error: {e}")))?;
        }
        base.add_data(self.data.clone())
            .map_err(|e| Error::platform(format!("policy data error: {e}")))?;
        base.set_enable_coverage(true);

        let mut run = TestRun::default();
        let mut covered: BTreeMap<
            String,
            (
                std::collections::BTreeSet<u32>,
                std::collections::BTreeSet<u32>,
            ),
        > = BTreeMap::new();
        for (path, text) in &self.tests {
            let package = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("package "))
                .map(|p| p.trim().to_string())
                .ok_or_else(|| Error::platform(format!("{path}: no package declaration")))?;
            for (line, name) in test_rules(text) {
                let full = format!("data.{package}.{name}");
                if filter.is_some_and(|f| !full.contains(f)) {
                    continue;
                }
                let mut engine = base.clone();
                engine.set_input(regorus::Value::new_object());
                let (passed, error) = match engine.eval_rule(full.clone()) {
                    Ok(v) => (v == regorus::Value::from(true), None),
                    Err(e) => (false, Some(e.to_string())),
                };
                if let Ok(report) = engine.get_coverage_report() {
                    for f in report.files {
                        let entry = covered.entry(f.path.clone()).or_default();
                        entry.0.extend(f.covered.iter().copied());
                        entry.1.extend(f.not_covered.iter().copied());
                    }
                }
                run.results.push(TestResult {
                    name: full,
                    file: path.clone(),
                    line,
                    passed,
                    error,
                });
            }
        }
        for (path, _) in &self.sources {
            let (hit, missed) = covered.remove(path).unwrap_or_default();
            // A line is covered if any test covered it.
            let not_covered: Vec<u32> = missed.difference(&hit).copied().collect();
            let total = hit.len() + not_covered.len();
            run.coverage.push(FileCoverage {
                file: path.clone(),
                covered: hit.len(),
                total,
                not_covered,
            });
        }
        Ok(run)
    }
}

/// `(line, name)` of each `test_*` rule head in a Rego file.
fn test_rules(text: &str) -> Vec<(u32, String)> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(rest) = line.strip_prefix("test_") else {
            continue;
        };
        let ident: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let name = format!("test_{ident}");
        // Rego allows several bodies for one rule name; it is one test.
        if seen.insert(name.clone()) {
            out.push((i as u32 + 1, name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_rules_are_found_once_each() {
        let text = "package x\n\ntest_a if { true }\ntest_a if { false }\n  helper := 1\ntest_b_2 if {\n}\n";
        let names: Vec<_> = test_rules(text).into_iter().map(|(_, n)| n).collect();
        assert_eq!(names, ["test_a", "test_b_2"]);
    }
}
