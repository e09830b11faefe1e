//! JUnit XML via quick-junit (nextest's writer): one test suite per input file, one test
//! case per finding (failures for errors, passing cases carrying warnings as output), and
//! a passing case for a file with no findings so CI shows it was checked.

use quick_junit::{NonSuccessKind, Report as JUnit, TestCase, TestCaseStatus, TestSuite};

use crate::findings::{Report, Severity};

pub fn render(report: &Report) -> String {
    let mut junit = JUnit::new("gitops-render");
    for file in &report.files {
        let mut suite = TestSuite::new(file.path.as_str());
        if file.findings.is_empty() {
            suite.add_test_case(TestCase::new("all checks", TestCaseStatus::success()));
        }
        for f in &file.findings {
            let location = match (f.line, f.column) {
                (Some(l), Some(c)) => format!("{}:{l}:{c}", file.path),
                (Some(l), None) => format!("{}:{l}", file.path),
                _ => file.path.clone(),
            };
            let name = format!("{} at {location}", f.rule);
            let mut case = match f.severity {
                Severity::Error => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(f.message.as_str());
                    status.set_type(f.rule.as_str());
                    if let Some(help) = &f.help {
                        status.set_description(format!("{}\nhelp: {help}", f.message));
                    }
                    TestCase::new(name, status)
                }
                Severity::Warning => {
                    let mut case = TestCase::new(name, TestCaseStatus::success());
                    case.set_system_out(format!("warning: {}", f.message));
                    case
                }
            };
            case.set_classname(f.rule.as_str());
            suite.add_test_case(case);
        }
        junit.add_test_suite(suite);
    }
    junit.to_string().expect("JUnit serialises")
}
