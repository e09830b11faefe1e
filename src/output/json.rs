//! `{"ok": bool, "findings": [...]}`, the shape PRODUCT.md pins.

use serde::Serialize;

use crate::findings::{Finding, Report};

#[derive(Serialize)]
struct Output<'a> {
    ok: bool,
    findings: Vec<&'a Finding>,
}

pub fn render(report: &Report) -> String {
    let out = Output {
        ok: report.ok(),
        findings: report.findings().collect(),
    };
    let mut s = serde_json::to_string_pretty(&out).expect("findings serialise");
    s.push('\n');
    s
}
