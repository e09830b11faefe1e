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
//! The engine is built once per process, with policies and data loaded, and cloned for
//! each evaluation: a clone shares the parsed modules and costs little.

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
    /// `Kind/name` of the object concerned.
    pub resource: Option<String>,
    /// The index in `input.manifests` of the object concerned, when the policy says
    /// (`lib.finding_at`): findings are attached by identity, never by name.
    pub object: Option<usize>,
    /// A JSON pointer into that object to the offending field.
    pub path: Option<String>,
}

pub struct Policies {
    engine: regorus::Engine,
    /// `(path, text)` of the test files, kept for `policy test`.
    tests: Vec<(String, String)>,
    /// `(path, text)` of the policy files.
    sources: Vec<(String, String)>,
    data: regorus::Value,
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
        // Evaluate once on the engine itself: that prepares it (rule analysis, scheduling,
        // loop hoisting), and the clones made per evaluation inherit the prepared state
        // instead of redoing it every time. It also makes a policy that fails at
        // evaluation time (a bad builtin call, a conflict) a platform error now, not
        // mid-fleet.
        engine.set_input(regorus::Value::from(
            serde_json::json!({"values": {}, "manifests": [], "context": {}}),
        ));
        engine
            .eval_query("data.gitops".to_string(), false)
            .map_err(|e| {
                Error::platform(format!("policy evaluation failed ({}): {e}", files.origin))
            })?;
        let policies = Policies {
            engine,
            tests,
            sources,
            data,
        };
        Ok(policies)
    }

    /// Evaluates every `gitops.*` package's `deny` and `warn` against one input.
    pub fn evaluate(&self, input: &Value) -> Result<Vec<Hit>> {
        let mut engine = self.engine.clone();
        engine.set_input(regorus::Value::from(input.clone()));
        let results = engine
            .eval_query("data.gitops".to_string(), false)
            .map_err(|e| Error::platform(format!("policy evaluation failed: {e}")))?;
        let mut hits = Vec::new();
        for result in results.result {
            for expr in result.expressions {
                let json: Value = serde_json::to_value(&expr.value)
                    .map_err(|e| Error::internal(format!("policy result is not JSON: {e}")))?;
                collect_hits(&json, &mut hits)?;
            }
        }
        hits.sort_by(|a, b| (&a.rule, &a.message).cmp(&(&b.rule, &b.message)));
        hits.dedup();
        Ok(hits)
    }

    pub fn sources(&self) -> &[(String, String)] {
        &self.sources
    }
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
                Value::String(k) => pointer.push_str(&crate::yaml::escape_pointer(k)),
                Value::Number(n) => pointer.push_str(&n.to_string()),
                other => pointer.push_str(&other.to_string()),
            }
        }
        pointer
    });
    (object, path)
}
