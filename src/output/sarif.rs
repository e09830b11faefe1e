//! SARIF 2.1.0 via serde-sarif. Each result's location is the real line and column in
//! the values (or manifest) file, which is what code-scanning UIs annotate. Each rule
//! that has a finding is described once in the driver, from the registry
//! (`crate::rules`): its summary, its section of docs/rules.md as help (markdown, and
//! plain text for viewers without markdown), its default level, and a link to the
//! rule's documentation when a docs base URL is configured (`--rules-url`); a
//! platform's own rule is described by its id alone. Results point at their rule by id
//! and by index, as GitHub code scanning and the SARIF viewers expect.

use std::collections::BTreeMap;

use serde_sarif::sarif::{
    ArtifactLocation, Location, Message, MultiformatMessageString, PhysicalLocation, Region,
    ReportingConfiguration, ReportingDescriptor, Result as SarifResult, ResultLevel, Run, Sarif,
    Tool, ToolComponent,
};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::Options;
use crate::findings::{Report, Severity};
use crate::rules;

pub fn render(report: &Report, options: &Options) -> String {
    // Rules in order of first appearance, so `ruleIndex` follows the results.
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut descriptors = Vec::new();
    let mut results = Vec::new();
    for f in report.findings() {
        let rule_index = *index.entry(f.rule.as_str()).or_insert_with(|| {
            descriptors.push(descriptor(&f.rule, options));
            descriptors.len() - 1
        });
        let mut text = f.message.clone();
        if let Some(help) = &f.help {
            text.push_str(" (help: ");
            text.push_str(help);
            text.push(')');
        }
        let mut locations = Vec::new();
        if let Some(file) = &f.file {
            let artifact = ArtifactLocation::builder().uri(uri_of(file)).build();
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
                .rule_index(rule_index as i64)
                .level(level(f.severity))
                .message(Message::builder().text(text).build())
                .locations(locations)
                .build(),
        );
    }
    let driver = ToolComponent::builder()
        .name("gitops-render".to_string())
        .version(env!("CARGO_PKG_VERSION").to_string())
        .rules(descriptors)
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

/// A file path as SARIF's `artifactLocation.uri`, which is a URI reference: a
/// relative path stays relative (code-scanning UIs resolve it against the checkout),
/// and every character outside RFC 3986's unreserved set and `/` is percent-encoded,
/// so a space, `#`, `?` or `%` in a file name cannot change what it refers to.
fn uri_of(path: &str) -> String {
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/');
    utf8_percent_encode(path, KEEP).to_string()
}

fn level(severity: Severity) -> ResultLevel {
    match severity {
        Severity::Error => ResultLevel::Error,
        Severity::Warning => ResultLevel::Warning,
    }
}

/// The rule as the driver describes it: everything the registry knows about it.
fn descriptor(id: &str, options: &Options) -> ReportingDescriptor {
    let Some(rule) = rules::find(id) else {
        return ReportingDescriptor::builder().id(id.to_string()).build();
    };
    let short = MultiformatMessageString::builder()
        .text(rule.summary.to_string())
        .build();
    let help = rules::help(id).map(|markdown| {
        MultiformatMessageString::builder()
            .text(rules::help_text(markdown))
            .markdown(markdown.to_string())
            .build()
    });
    // `policy` takes whatever severity the policy gave it: no default to state.
    let configuration = rule.severity.map(|s| {
        ReportingConfiguration::builder()
            .level(serde_json::json!(s.as_str()))
            .build()
    });
    let uri = options
        .rules_url
        .as_deref()
        .map(|base| format!("{base}#{}", rule.id));
    // serde-sarif's builder types each optional field into the builder's type, so the
    // optional parts are set on the built value.
    let mut d = ReportingDescriptor::builder()
        .id(id.to_string())
        .short_description(short)
        .build();
    d.help = help;
    d.default_configuration = configuration;
    d.help_uri = uri;
    d
}
