//! SARIF 2.1.0 via serde-sarif. Each result's location is the real line and column in
//! the values (or manifest) file, which is what code-scanning UIs annotate; rules are
//! listed once each in the driver.

use std::collections::BTreeMap;

use serde_sarif::sarif::{
    ArtifactLocation, Location, Message, MultiformatMessageString, PhysicalLocation, Region,
    ReportingDescriptor, Result as SarifResult, ResultLevel, Run, Sarif, Tool, ToolComponent,
};

use crate::findings::{Report, Severity};

pub fn render(report: &Report) -> String {
    let mut rules: BTreeMap<&str, ReportingDescriptor> = BTreeMap::new();
    let mut results = Vec::new();
    for f in report.findings() {
        rules.entry(f.rule.as_str()).or_insert_with(|| {
            // A registered rule gets its summary and its section of docs/rules.md (which
            // code-scanning UIs link as "learn more"); a platform's own rule, its id.
            let known = crate::rules::find(&f.rule);
            let summary = known.map_or_else(|| f.rule.clone(), |r| r.summary.to_string());
            let descriptor = ReportingDescriptor::builder()
                .id(f.rule.clone())
                .short_description(MultiformatMessageString::builder().text(summary).build());
            match crate::rules::docs_url(&f.rule) {
                Some(uri) => descriptor.help_uri(uri).build(),
                None => descriptor.build(),
            }
        });
        let mut text = f.message.clone();
        if let Some(help) = &f.help {
            text.push_str(" (help: ");
            text.push_str(help);
            text.push(')');
        }
        let level = match f.severity {
            Severity::Error => ResultLevel::Error,
            Severity::Warning => ResultLevel::Warning,
        };
        let mut locations = Vec::new();
        if let Some(file) = &f.file {
            let artifact = ArtifactLocation::builder().uri(file.clone()).build();
            let physical = match f.line {
                Some(line) => PhysicalLocation::builder()
                    .artifact_location(artifact)
                    .region(
                        Region::builder()
                            .start_line(i64::from(line))
                            .start_column(i64::from(f.column.unwrap_or(1)))
                            .build(),
                    )
                    .build(),
                None => PhysicalLocation::builder()
                    .artifact_location(artifact)
                    .build(),
            };
            locations.push(Location::builder().physical_location(physical).build());
        }
        results.push(
            SarifResult::builder()
                .rule_id(f.rule.clone())
                .level(level)
                .message(Message::builder().text(text).build())
                .locations(locations)
                .build(),
        );
    }
    let driver = ToolComponent::builder()
        .name("gitops-render".to_string())
        .version(env!("CARGO_PKG_VERSION").to_string())
        .rules(rules.into_values().collect::<Vec<_>>())
        .build();
    let run = Run::builder()
        .tool(Tool::builder().driver(driver).build())
        .results(results)
        .build();
    let sarif = Sarif::builder()
        .schema(serde_sarif::sarif::SCHEMA_URL.to_string())
        .version(serde_json::json!("2.1.0"))
        .runs(vec![run])
        .build();
    let mut s = serde_json::to_string_pretty(&sarif).expect("SARIF serialises");
    s.push('\n');
    s
}
