//! `gitops-render policy test`: regorus has no test runner, so this is one. Every
//! `test_*` rule of every `policies/*_test.rego` runs in a fresh engine; a test passes
//! when it evaluates to true.
//!
//! Line coverage counts every line of every rule body of every policy file, so a file
//! no test touches is 0% covered, not absent. regorus reports lines only for the files
//! an evaluation touched, so the set of lines that *could* be covered comes from a
//! census: one evaluation of every package on an empty input, which touches each file
//! and lets regorus list all its rule lines (covered or not by the census itself). The
//! tests' coverage is then judged against that set.

use std::collections::{BTreeMap, BTreeSet};

use super::Policies;
use crate::error::{Error, Result};

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
    /// Rule-body lines some test evaluated.
    pub covered: usize,
    /// Every rule-body line of the file.
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
    /// `(covered, total)` lines over every policy file.
    pub fn lines(&self) -> (usize, usize) {
        self.coverage
            .iter()
            .fold((0, 0), |(c, t), f| (c + f.covered, t + f.total))
    }
}

type Lines = BTreeMap<String, BTreeSet<u32>>;

impl Policies {
    /// Runs every `test_*` rule of every `*_test.rego`, each with a fresh engine so one
    /// test cannot leak into another, and measures line coverage of the policies.
    pub fn run_tests(&self, filter: Option<&str>) -> Result<TestRun> {
        let mut base = regorus::Engine::new();
        for (path, text) in self
            .sources
            .iter()
            .chain(self.deploy_sources.iter())
            .chain(self.tests.iter())
        {
            base.add_policy(path.clone(), text.clone())
                .map_err(|e| Error::platform(format!("policy error: {e}")))?;
        }
        base.add_data(self.data.clone())
            .map_err(|e| Error::platform(format!("policy data error: {e}")))?;
        base.set_enable_coverage(true);

        let mut run = TestRun::default();
        let mut covered = Lines::new();
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
                        covered
                            .entry(f.path.clone())
                            .or_default()
                            .extend(f.covered.iter().copied());
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
        let coverable = self.census()?;
        for (path, text) in self.sources.iter().chain(self.deploy_sources.iter()) {
            // The census's lines, and any line a test reached that it did not list.
            let hit = covered.remove(path).unwrap_or_default();
            let all: BTreeSet<u32> = match coverable.get(path) {
                Some(lines) => lines.union(&hit).copied().collect(),
                None => code_lines(text).union(&hit).copied().collect(),
            };
            let not_covered: Vec<u32> = all.difference(&hit).copied().collect();
            run.coverage.push(FileCoverage {
                file: path.clone(),
                covered: all.len() - not_covered.len(),
                total: all.len(),
                not_covered,
            });
        }
        // By path: the deploy policies (`policies/deploy/`) among the others.
        run.coverage.sort_by(|a, b| a.file.cmp(&b.file));
        Ok(run)
    }

    /// Every rule-body line of every policy file, as regorus counts them: one evaluation
    /// of all packages touches every file, and regorus's report then lists each file's
    /// rule lines, covered or not.
    fn census(&self) -> Result<Lines> {
        let mut engine = regorus::Engine::new();
        for (path, text) in self.sources.iter().chain(self.deploy_sources.iter()) {
            engine
                .add_policy(path.clone(), text.clone())
                .map_err(|e| Error::platform(format!("policy error: {e}")))?;
        }
        engine
            .add_data(self.data.clone())
            .map_err(|e| Error::platform(format!("policy data error: {e}")))?;
        engine.set_enable_coverage(true);
        engine.set_input(regorus::Value::from(
            serde_json::json!({"values": {}, "manifests": [], "context": {}}),
        ));
        // Whether it succeeds does not matter: what it touched is what is wanted.
        let _ = engine.eval_query("data".to_string(), false);
        let report = engine
            .get_coverage_report()
            .map_err(|e| Error::internal(format!("policy coverage: {e}")))?;
        Ok(report
            .files
            .into_iter()
            .map(|f| {
                let lines = f.covered.union(&f.not_covered).copied().collect();
                (f.path, lines)
            })
            .collect())
    }
}

/// For a file even the census did not touch (it holds only functions nothing calls): its
/// lines of code inside rule bodies, i.e. indented lines that are not comments. Never
/// zero for a file with rules, so such a file counts as uncovered, not as absent.
fn code_lines(text: &str) -> BTreeSet<u32> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim();
            l.starts_with(char::is_whitespace) && !t.is_empty() && !t.starts_with('#') && t != "}"
        })
        .map(|(i, _)| i as u32 + 1)
        .collect()
}

/// `(line, name)` of each `test_*` rule head in a Rego file.
fn test_rules(text: &str) -> Vec<(u32, String)> {
    let mut seen = BTreeSet::new();
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

    #[test]
    fn code_lines_are_the_indented_lines_of_rule_bodies() {
        let text = "package x\n\n# c\nf(a) := b if {\n\t# why\n\tb := a + 1\n\n}\n";
        assert_eq!(code_lines(text), BTreeSet::from([6]));
    }
}
