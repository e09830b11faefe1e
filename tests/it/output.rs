//! Every output format on one shared set of findings: errors and warnings, a waiver
//! notice, findings with and without a file, line, column, resource or help, a rule of
//! the registry and a platform's own, unicode, and text that is hostile to each format
//! (markdown and HTML metacharacters, backticks, `|`, and the `%0A`-style sequences
//! that would end a GitHub workflow command early and start another). Each format is
//! snapshot-tested, and each is also checked by the rules of its own format: JSON
//! parses to PRODUCT.md's shape, SARIF validates against the SARIF 2.1.0 schema, JUnit
//! parses as XML, GitHub lines are well-formed workflow commands whose data decodes
//! back to exactly the finding, and the check-run markdown renders back to the text.

use std::sync::Arc;

use gitops_render::findings::{FileReport, Finding, Report, Severity};
use gitops_render::output::{self, markdown, Format, Options};
use serde_json::Value;

use crate::common::fixtures;

const VALUES_PATH: &str = ".gitops/payments-api.yaml";
const VALUES: &str = "\
app: payments-api
team: payments
archetype: web-service
image: registry.evil.example/payments/payments-api
version: 1.4.2
replicas: 0
port: 8080
env:
  GREETING: \"grüße ✓ 日本\"
";

/// A platform team's own Rego rule: not in the registry, so it has no help or link.
const PLATFORM_RULE: &str = "acme-cost-center";

fn at(f: Finding, file: &str, line: Option<u32>, column: Option<u32>) -> Finding {
    Finding {
        file: Some(file.to_string()),
        line,
        column,
        ..f
    }
}

/// The shared report: three files, the second with nothing found.
fn report() -> Report {
    let mut values = FileReport::new(VALUES_PATH, Some(Arc::from(VALUES)));
    values.findings = vec![
        at(
            Finding::error("image-registry", "image `registry.evil.example/payments/payments-api` is not from one of the team's registries <registry.example.com/payments/>")
                .resource("Deployment/payments-api")
                .help("use an image under `registry.example.com/payments/`; ask the platform team | #platform to add a registry"),
            VALUES_PATH,
            Some(4),
            Some(8),
        ),
        at(
            Finding::error("values-schema", "`replicas` must be at least 1, got 0")
                .help("a web-service runs at least one replica; use `replicas: 1` or more"),
            VALUES_PATH,
            Some(6),
            Some(11),
        ),
        // A line but no column, unicode in the message and on the line.
        at(
            Finding::warning("labels-recommended", "GREETING=\"grüße ✓ 日本\" is shown as is; `app.kubernetes.io/version` is missing 🚀"),
            VALUES_PATH,
            Some(9),
            None,
        ),
        // A file but no line: reported on the file as a whole.
        at(
            Finding::warning("pdb-missing", "Deployment/payments-api has 3 replicas and no PodDisruptionBudget")
                .resource("Deployment/payments-api"),
            VALUES_PATH,
            None,
            None,
        ),
        // No file at all, as a policy's finding about the deployment context can be.
        Finding::error(
            PLATFORM_RULE,
            "every object needs a `cost-center` label | see *FinOps* <https://wiki.example/finops> & [the runbook](javascript:alert(1))",
        ),
        // The notice a waiver that no longer applies leaves behind.
        Finding::warning(
            "waiver-expired",
            "the waiver of `pdb-missing` for payments-api/prod expired on 2026-05-31 and no longer applies (reason given: migration to <new> cluster, see ticket #42)",
        )
        .help("fix what `pdb-missing` reports, or renew the waiver in policies/exceptions.yaml (line 7)"),
        // Workflow-command injection: a message and help that try to end the command
        // and start another, already-escaped sequences that must stay literal, CR LF.
        at(
            Finding::error(
                "policy",
                "bad value\n::error file=src/main.rs,line=1::pwned%0A::warning::also pwned\r\n100% done, `a|b` ``c`` <script>alert(1)</script>",
            )
            .help("%0D%0A is text, not a line break: ::notice::no"),
            VALUES_PATH,
            Some(1),
            Some(1),
        ),
    ];
    values.normalise();
    let clean = FileReport::new("apps/ledger-worker/prod/values.yaml", None);
    // A path with the characters a workflow-command property must escape.
    let odd_path = "manifests/odd, name: v1.yaml";
    let mut odd = FileReport::new(
        odd_path,
        Some(Arc::from("apiVersion: example.com/v1\nkind: Widget\n")),
    );
    odd.findings = vec![at(
        Finding::warning("kube-no-schema", "Widget/example.com/v1 is a custom resource without a CRD here; it was not checked against an API schema")
            .resource("Widget/w"),
        odd_path,
        Some(1),
        Some(1),
    )];
    Report {
        files: vec![values, clean, odd],
    }
}

fn render(format: Format) -> String {
    output::render(&report(), format, &Options::default())
}

#[test]
fn the_shared_report_has_what_every_format_must_handle() {
    let r = report();
    assert_eq!(r.count(Severity::Error), 4);
    assert_eq!(r.count(Severity::Warning), 4);
    assert!(r.findings().any(|f| f.file.is_none()));
    assert!(r.findings().any(|f| f.file.is_some() && f.line.is_none()));
    assert!(r.findings().any(|f| f.line.is_some() && f.column.is_none()));
    assert!(r.files.iter().any(|f| f.findings.is_empty()));
}

#[test]
fn text() {
    insta::assert_snapshot!(render(Format::Text));
}

#[test]
fn json_is_the_shape_product_md_pins() {
    let out = render(Format::Json);
    insta::assert_snapshot!(out);
    let doc: Value = serde_json::from_str(&out).expect("JSON parses");
    let keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["findings", "ok"]);
    assert_eq!(doc["ok"], Value::Bool(false));
    let report = report();
    let findings = doc["findings"].as_array().unwrap();
    assert_eq!(findings.len(), report.findings().count());
    for (got, want) in findings.iter().zip(report.findings()) {
        assert_eq!(got["rule"], want.rule.as_str());
        assert_eq!(got["message"], want.message.as_str());
        assert_eq!(got["severity"], want.severity.as_str());
        assert_eq!(
            got.get("file").and_then(Value::as_str),
            want.file.as_deref()
        );
        assert_eq!(
            got.get("line").and_then(Value::as_u64),
            want.line.map(u64::from)
        );
        assert_eq!(
            got.get("column").and_then(Value::as_u64),
            want.column.map(u64::from)
        );
        for key in got.as_object().unwrap().keys() {
            assert!(
                ["rule", "severity", "message", "file", "line", "column", "resource", "help"]
                    .contains(&key.as_str()),
                "unexpected key {key}"
            );
        }
    }
}

fn sarif_schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(fixtures().join("sarif-schema-2.1.0.json")).unwrap();
    let mut schema: Value = serde_json::from_str(&text).unwrap();
    // The published schema's one broken regex (a stray `]` in the `language` pattern
    // of `run` and `toolComponent`, which no output of ours sets): as written, the
    // meta-schema's `regex` format refuses the schema itself. Replaced in memory by the
    // pattern the standard's text means (a language code, optionally with a region);
    // the file stays as published.
    let broken = "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$";
    let mut replaced = 0;
    for def in ["run", "toolComponent"] {
        let pattern = schema
            .pointer_mut(&format!("/definitions/{def}/properties/language/pattern"))
            .expect("the schema's language pattern");
        if pattern == broken {
            *pattern = Value::from("^[a-zA-Z]{2}(-[a-zA-Z]{2})?$");
            replaced += 1;
        }
    }
    assert_eq!(replaced, 2, "the vendored schema changed: check the patch");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the SARIF schema compiles")
}

fn assert_valid_sarif(doc: &Value) {
    let validator = sarif_schema();
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "not SARIF 2.1.0:\n{}", errors.join("\n"));
}

#[test]
fn the_schema_check_rejects_what_is_not_sarif() {
    // The validator is not vacuous: a result without a message breaks the schema.
    let mut doc: Value = serde_json::from_str(&render(Format::Sarif)).unwrap();
    doc["runs"][0]["results"][0]
        .as_object_mut()
        .unwrap()
        .remove("message");
    assert!(!sarif_schema().is_valid(&doc));
    let mut doc: Value = serde_json::from_str(&render(Format::Sarif)).unwrap();
    doc["runs"][0]["results"][0]["level"] = Value::from("fatal");
    assert!(!sarif_schema().is_valid(&doc));
    let mut doc: Value = serde_json::from_str(&render(Format::Sarif)).unwrap();
    doc["runs"][0]["tool"]["driver"]["rules"][0]["helpUri"] = Value::from("not a uri");
    assert!(!sarif_schema().is_valid(&doc));
}

#[test]
fn sarif_validates_against_the_sarif_2_1_0_schema() {
    let out = render(Format::Sarif);
    insta::assert_snapshot!(out);
    let doc: Value = serde_json::from_str(&out).expect("SARIF parses");
    assert_valid_sarif(&doc);
    assert_eq!(doc["version"], "2.1.0");
    let run = &doc["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), report().findings().count());
    // Every result names a rule of the driver, by id and by index.
    for result in results {
        let index = result["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[index]["id"], result["ruleId"]);
    }
    // Locations are the real lines: none invented where the finding has none.
    let no_file = results
        .iter()
        .find(|r| r["ruleId"] == PLATFORM_RULE)
        .unwrap();
    assert!(no_file
        .get("locations")
        .is_none_or(|l| l.as_array().unwrap().is_empty()));
    let whole_file = results
        .iter()
        .find(|r| r["ruleId"] == "pdb-missing")
        .unwrap();
    assert!(whole_file["locations"][0]["physicalLocation"]
        .get("region")
        .is_none());
}

/// Each emitted rule is described once, from the registry: its summary, and its
/// section of docs/rules.md as help; a platform's own rule only by id.
#[test]
fn sarif_rules_carry_the_registry_s_summary_and_help() {
    let doc: Value = serde_json::from_str(&render(Format::Sarif)).unwrap();
    let rules = doc["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let mut emitted: Vec<&str> = Vec::new();
    let report = report();
    for f in report.findings() {
        if !emitted.contains(&f.rule.as_str()) {
            emitted.push(&f.rule);
        }
    }
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        ids.len(),
        "a rule is described twice: {ids:?}"
    );
    emitted.sort();
    assert_eq!(sorted, emitted);
    for rule in rules {
        let id = rule["id"].as_str().unwrap();
        assert!(
            rule.get("helpUri").is_none(),
            "{id}: no docs URL configured"
        );
        match gitops_render::rules::find(id) {
            Some(known) => {
                assert_eq!(rule["shortDescription"]["text"], known.summary);
                let help = gitops_render::rules::help(id).expect("documented");
                assert_eq!(rule["help"]["markdown"], help);
                let text = rule["help"]["text"].as_str().unwrap();
                assert!(text.len() > 40 && !text.contains("**"), "{id}: {text}");
            }
            None => {
                assert_eq!(id, PLATFORM_RULE);
                assert!(rule.get("help").is_none());
            }
        }
    }
}

#[test]
fn sarif_links_the_rules_docs_only_when_a_base_url_is_configured() {
    let options = Options {
        rules_url: Some("https://docs.example.com/gitops-render/rules".to_string()),
        ..Options::default()
    };
    let out = output::render(&report(), Format::Sarif, &options);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_valid_sarif(&doc);
    for rule in doc["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
    {
        let id = rule["id"].as_str().unwrap();
        let uri = rule.get("helpUri").and_then(Value::as_str);
        if id == PLATFORM_RULE {
            assert_eq!(uri, None);
        } else {
            let parsed = url::Url::parse(uri.unwrap()).expect("an absolute URI");
            assert_eq!(parsed.fragment(), Some(id));
            assert_eq!(
                uri,
                Some(format!("https://docs.example.com/gitops-render/rules#{id}").as_str())
            );
        }
    }
}

#[test]
fn junit_parses_as_xml() {
    let out = render(Format::Junit);
    insta::assert_snapshot!(out);
    let mut reader = quick_xml::Reader::from_str(&out);
    reader.config_mut().check_end_names = true;
    let (mut cases, mut failures, mut suites) = (0, 0, 0);
    let mut texts = String::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            quick_xml::events::Event::Eof => break,
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                match e.name().as_ref() {
                    b"testsuite" => suites += 1,
                    b"testcase" => cases += 1,
                    b"failure" => failures += 1,
                    _ => {}
                }
                for a in e.attributes() {
                    let a = a.expect("well-formed attribute");
                    texts.push_str(
                        &a.decoded_and_normalized_value(
                            quick_xml::XmlVersion::Implicit1_0,
                            reader.decoder(),
                        )
                        .unwrap(),
                    );
                    texts.push('\n');
                }
            }
            quick_xml::events::Event::Text(t) => {
                texts.push_str(&t.decode().unwrap());
            }
            quick_xml::events::Event::GeneralRef(r) => {
                // quick-xml reports `&lt;` and friends apart from the text around them.
                let name = r.decode().unwrap();
                texts.push_str(match name.as_ref() {
                    "lt" => "<",
                    "gt" => ">",
                    "amp" => "&",
                    "quot" => "\"",
                    "apos" => "'",
                    other => panic!("unexpected entity {other}"),
                });
            }
            _ => {}
        }
    }
    let report = report();
    assert_eq!(suites, report.files.len());
    // A case per finding, and one for the file with none.
    assert_eq!(cases, report.findings().count() + 1);
    assert_eq!(failures, report.count(Severity::Error));
    // The text survives XML escaping (CR is normalised away by XML itself).
    for f in report.findings() {
        let first_line = f.message.lines().next().unwrap();
        assert!(texts.contains(first_line), "{first_line:?} lost");
    }
}

/// Undoes the runner's escaping of a command's data (`%25`, `%0D`, `%0A`) and, for a
/// property, `%3A` and `%2C`.
fn unescape(s: &str) -> String {
    s.replace("%0A", "\n")
        .replace("%0D", "\r")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
}

#[test]
fn github_lines_are_well_formed_commands_whose_data_decodes_back() {
    let out = render(Format::Github);
    insta::assert_snapshot!(out);
    let report = report();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.len(),
        report.findings().count(),
        "one command per finding"
    );
    for (line, f) in lines.iter().zip(report.findings()) {
        // `::level props::data`: exactly one command per line, nothing after it.
        let rest = line.strip_prefix("::").expect("starts a command");
        let (command, data) = rest.split_once("::").expect("has data");
        let (level, props) = command.split_once(' ').unwrap_or((command, ""));
        let want = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        assert_eq!(level, want);
        // Properties: `key=value` separated by commas; a value holds no raw `,` `:`.
        let mut file = None;
        for prop in props.split(',') {
            let (key, value) = prop.split_once('=').expect("key=value");
            assert!(!value.contains(':') && !value.contains('\n'), "{prop}");
            assert!(["file", "line", "col", "title"].contains(&key), "{key}");
            match key {
                "file" => file = Some(unescape(value)),
                "line" => assert_eq!(Some(value.parse::<u32>().unwrap()), f.line),
                "col" => assert_eq!(Some(value.parse::<u32>().unwrap()), f.column),
                "title" => assert_eq!(unescape(value), f.rule),
                _ => unreachable!(),
            }
        }
        assert_eq!(file, f.file);
        // The data: no raw line break (the runner would end the command there), and
        // percent sequences in the message come back as typed, not as line breaks.
        assert!(!data.contains('\n') && !data.contains('\r'));
        let decoded = unescape(data);
        let message = decoded.split("\nhelp: ").next().unwrap();
        assert_eq!(message, f.message);
    }
}

/// What a CommonMark parser with GitHub's tables shows of `md`, as text.
fn rendered_text(md: &str) -> String {
    use pulldown_cmark::{Event, Options as Md, Parser};
    let mut out = String::new();
    for event in Parser::new_ext(md, Md::ENABLE_TABLES | Md::ENABLE_STRIKETHROUGH) {
        match event {
            Event::Text(t) | Event::Code(t) => out.push_str(&t),
            Event::SoftBreak | Event::HardBreak => out.push(' '),
            Event::Html(h) | Event::InlineHtml(h) => {
                // Only the `<br>` before a help line is ours; any other tag would be
                // a team's text let through as HTML.
                assert_eq!(h.trim(), "<br>", "raw HTML in the markdown: {h:?}");
            }
            _ => {}
        }
    }
    out
}

#[test]
fn check_run_markdown_shows_every_message_exactly() {
    let report = report();
    let mut out = String::new();
    for file in &report.files {
        out.push_str(&format!("### {}\n\n", markdown::text(&file.path)));
        markdown::findings(&mut out, &file.findings);
        out.push('\n');
    }
    insta::assert_snapshot!(out);
    let shown = rendered_text(&out);
    for f in report.findings() {
        // Line breaks become spaces (a finding stays one list item); nothing else
        // changes: no markup, link or HTML a message carries takes effect.
        let want = f.message.replace(['\n', '\r'], " ");
        assert!(shown.contains(&want), "{want:?} not in {shown:?}");
    }
}

/// `--rules-url` (or GITOPS_RENDER_RULES_URL) reaches the SARIF of the real binary;
/// a value that cannot be a page's URL is a usage error before any work.
#[test]
fn the_rules_url_setting_links_sarif_rules_end_to_end() {
    let bad = fixtures().join("values/bad/typo-top-level.yaml");
    let bad = bad.to_str().unwrap();
    let (code, out, err) = crate::common::run(crate::common::bin().args([
        "check",
        bad,
        "--output",
        "sarif",
        "--rules-url",
        "https://docs.example.com/rules",
    ]));
    assert_eq!(code, 1, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_valid_sarif(&doc);
    let rules = doc["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    assert!(!rules.is_empty());
    for rule in rules {
        let id = rule["id"].as_str().unwrap();
        assert_eq!(
            rule["helpUri"],
            format!("https://docs.example.com/rules#{id}").as_str()
        );
    }

    let (code, out, _) = crate::common::run(
        crate::common::bin()
            .args(["check", bad, "--output", "sarif"])
            .env(
                "GITOPS_RENDER_RULES_URL",
                "https://docs.example.com/from-env",
            ),
    );
    assert_eq!(code, 1);
    assert!(
        out.contains("\"helpUri\": \"https://docs.example.com/from-env#"),
        "{out}"
    );

    let (code, out, _) =
        crate::common::run(crate::common::bin().args(["check", bad, "--output", "sarif"]));
    assert_eq!(code, 1);
    assert!(!out.contains("helpUri"), "{out}");

    for wrong in [
        "docs/rules.md",
        "https://docs.example.com/rules#top",
        "ftp://x/rules",
    ] {
        let (code, out, err) =
            crate::common::run(crate::common::bin().args(["check", bad, "--rules-url", wrong]));
        assert_eq!(code, 2, "{wrong}: {out}{err}");
        assert!(err.contains("--rules-url"), "{err}");
    }
}
