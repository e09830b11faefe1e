//! The rule registry: every rule id gitops-render or the standard platform's policies
//! can report, with its severity, a one-line summary and where it is documented.
//!
//! A finding's rule id is what users search for, waive (`policies/exceptions.yaml`) and
//! count in reports, so each id is a promise: this table is the one list of them. It
//! feeds the SARIF rule descriptors (summary, help from docs/rules.md, and `helpUri`
//! when `--rules-url` says where the docs are published), and a test scans the Rust sources and
//! the Rego policies for the ids they can emit and fails when one is missing here or in
//! `docs/rules.md` (whose summary table must match this one row for row).
//!
//! A platform team's own policies may add ids of their own; those are not listed here
//! and are reported without a documentation link.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use crate::findings::Severity;

/// Where a rule is decided: which stage raises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Yaml,
    Values,
    Kubernetes,
    PodSecurity,
    Hardening,
    Images,
    Ingress,
    Tenancy,
    Labels,
    Rbac,
    Waivers,
    Repository,
    Policies,
    DeployApi,
}

impl Area {
    pub fn as_str(self) -> &'static str {
        match self {
            Area::Yaml => "yaml",
            Area::Values => "values",
            Area::Kubernetes => "kubernetes api",
            Area::PodSecurity => "pod security",
            Area::Hardening => "hardening",
            Area::Images => "images",
            Area::Ingress => "ingress",
            Area::Tenancy => "tenancy",
            Area::Labels => "labels",
            Area::Rbac => "rbac",
            Area::Waivers => "waivers",
            Area::Repository => "repository",
            Area::Policies => "policies",
            Area::DeployApi => "deploy api",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub id: &'static str,
    /// `None` only for `policy`, whose severity is whatever the policy declared.
    pub severity: Option<Severity>,
    pub area: Area,
    pub summary: &'static str,
    /// Raised by a Rego policy of the standard platform (else by gitops-render itself).
    pub rego: bool,
}

const fn rust(id: &'static str, severity: Severity, area: Area, summary: &'static str) -> Rule {
    Rule {
        id,
        severity: Some(severity),
        area,
        summary,
        rego: false,
    }
}

const fn rego(id: &'static str, severity: Severity, area: Area, summary: &'static str) -> Rule {
    Rule {
        id,
        severity: Some(severity),
        area,
        summary,
        rego: true,
    }
}

use Area::*;
use Severity::{Error as E, Warning as W};

/// Every rule, in the order `docs/rules.md` lists them: one line per rule.
#[rustfmt::skip]
pub const RULES: &[Rule] = &[
    // The standard platform's Rego policies.
    rego("pss-run-as-non-root", E, PodSecurity, "every container runs with runAsNonRoot: true"),
    rego("pss-run-as-user-root", E, PodSecurity, "no pod or container sets runAsUser: 0"),
    rego("pss-privileged", E, PodSecurity, "no container is privileged"),
    rego("pss-privilege-escalation", E, PodSecurity, "every container sets allowPrivilegeEscalation: false"),
    rego("pss-capabilities-drop-all", E, PodSecurity, "every container drops ALL capabilities"),
    rego("pss-capabilities-add", E, PodSecurity, "no capability is added back but NET_BIND_SERVICE"),
    rego("pss-seccomp", E, PodSecurity, "the seccomp profile is RuntimeDefault or Localhost"),
    rego("pss-host-namespaces", E, PodSecurity, "no host network, PID or IPC namespace"),
    rego("pss-host-path", E, PodSecurity, "no hostPath volume"),
    rego("pss-volume-types", E, PodSecurity, "only the volume types the restricted profile allows"),
    rego("pss-host-ports", E, PodSecurity, "no host port"),
    rego("pss-read-only-root-filesystem", E, PodSecurity, "every container's root filesystem is read-only"),
    rego("resources-requests", E, Hardening, "every container requests CPU and memory"),
    rego("resources-limits", E, Hardening, "every container has CPU and memory limits"),
    rego("probes-required", E, Hardening, "a long-running container that serves a port has probes"),
    rego("service-account-token", E, Hardening, "no service account token is mounted unless asked for"),
    rego("service-account-default", W, Hardening, "a pod runs as its app's own ServiceAccount, never default"),
    rego("pdb-missing", W, Hardening, "a workload with more than one replica has a PodDisruptionBudget"),
    rego("network-policy-missing", W, Hardening, "every app's pods are selected by a NetworkPolicy"),
    rego("image-registry", E, Images, "images come only from the team's registries"),
    rego("image-tag-latest", E, Images, "no image uses the tag latest without a digest"),
    rego("image-tag-missing", E, Images, "every image has a tag or a digest"),
    rego("ingress-host-domain", E, Ingress, "every host served is under one of the team's ingress domains"),
    rego("ingress-tls", W, Ingress, "every host an Ingress serves is covered by its TLS"),
    rego("team-unknown", E, Tenancy, "the team (deploying, or named by an object's team label) is in the teams registry"),
    rego("team-owns-app", E, Tenancy, "the team owns the app in the teams registry"),
    rego("source-repo", E, Tenancy, "the source repository is one of the team's"),
    rego("namespace-team", E, Tenancy, "namespaced objects are in <team>-<env>"),
    rego("namespace-default", E, Tenancy, "nothing goes in default or a kube-* namespace"),
    rego("namespace-missing", W, Tenancy, "every namespaced object sets its namespace"),
    rego("team-label-mismatch", E, Tenancy, "no object carries another team's label"),
    rego("labels-required", E, Labels, "objects and their pods carry the name, managed-by and team labels"),
    rego("labels-recommended", W, Labels, "objects carry the other recommended app.kubernetes.io labels"),
    rego("rbac-wildcard", E, Rbac, "no Role or ClusterRole rule has * in verbs or resources"),
    rego("rbac-escalation", E, Rbac, "no role grants bind, escalate or impersonate"),
    rego("rbac-secrets-cluster-wide", E, Rbac, "no ClusterRole reads Secrets"),
    rego("rbac-cluster-admin", E, Rbac, "nothing is bound to cluster-admin"),
    Rule {
        id: "policy",
        severity: None,
        area: Policies,
        summary: "a deny or warn entry that is a bare string, as conftest allows",
        rego: true,
    },
    // The YAML reader.
    rust("yaml-syntax", E, Yaml, "the file is not valid YAML, or uses an undefined alias"),
    rust("yaml-duplicate-key", E, Yaml, "a mapping repeats a key"),
    rust("yaml-alias-budget", E, Yaml, "aliases expand past the node budget (billion laughs)"),
    rust("yaml-too-deep", E, Yaml, "nesting is deeper than the reader allows"),
    rust("yaml-complex-key", E, Yaml, "a mapping key is not a plain scalar"),
    rust("yaml-tag", E, Yaml, "a YAML tag (!!binary, !custom) is used"),
    rust("yaml-encoding", E, Yaml, "a manifest file is not UTF-8 text"),
    // The values file.
    rust("values-too-large", E, Values, "the values file is over 64 KiB"),
    rust("values-encoding", E, Values, "the values file is not UTF-8 text or holds a NUL character"),
    rust("values-shape", E, Values, "the values file is empty, holds several documents, or is not a mapping"),
    rust("values-unknown-field", E, Values, "a field the values schema does not know"),
    rust("values-not-for-archetype", E, Values, "a field that does not apply to the archetype"),
    rust("values-required", E, Values, "a required field is missing"),
    rust("values-type", E, Values, "a field has the wrong type"),
    rust("values-schema", E, Values, "a value breaks the values schema (pattern, range, enum)"),
    rust("values-missing", E, Values, "an app directory in the GitOps repository has no values.yaml"),
    // The Kubernetes API schema.
    rust("kube-schema", E, Kubernetes, "an object does not match its Kubernetes API schema"),
    rust("kube-unknown-field", E, Kubernetes, "an object has a field its API schema does not know"),
    rust("kube-required-field", E, Kubernetes, "an object lacks a field its API schema, or the API server, requires"),
    rust("kube-api-version", E, Kubernetes, "an apiVersion this Kubernetes version does not serve"),
    rust("kube-no-schema", W, Kubernetes, "a custom resource, not checked against an API schema"),
    rust("kube-crd", E, Kubernetes, "a CustomResourceDefinition that cannot be used"),
    rust("kube-name", E, Kubernetes, "a name breaks its kind's naming rule"),
    rust("kube-label", E, Kubernetes, "a label key or value breaks the label syntax"),
    rust("kube-annotation", E, Kubernetes, "an annotation key breaks the syntax, or annotations are too large"),
    rust("kube-selector", E, Kubernetes, "a label selector the API server refuses"),
    rust("kube-enum", E, Kubernetes, "a field with a fixed set of values has another one"),
    rust("kube-port", E, Kubernetes, "a port number outside its range, or a Service port listed twice"),
    rust("kube-port-name", E, Kubernetes, "a port name that is not an IANA service name"),
    rust("kube-quantity", E, Kubernetes, "a resource quantity that does not parse, or a resource a container cannot ask for"),
    rust("kube-probe", E, Kubernetes, "a probe without exactly one handler, or with bad timings"),
    rust("kube-volume-mount", E, Kubernetes, "a container mounts a volume the pod does not have, two at one path, or a subPath outside the volume"),
    rust("kube-volume", E, Kubernetes, "a volume or PersistentVolume without exactly one source, a file mode over 0777, or a file path outside the volume"),
    rust("kube-ingress-host", E, Kubernetes, "an Ingress host that is not a valid host name"),
    rust("kube-ingress-path", E, Kubernetes, "an Ingress path that is not absolute, or not clean for Exact and Prefix"),
    rust("kube-range", E, Kubernetes, "a count the API server refuses: negative, over 100%, or a minimum above its maximum"),
    rust("kube-field-conflict", E, Kubernetes, "fields the API server refuses together, or one it needs beside another"),
    rust("kube-cron-schedule", E, Kubernetes, "a CronJob schedule the API server cannot parse, or a time zone it cannot load"),
    rust("kube-config-key", E, Kubernetes, "a ConfigMap or Secret key that is not a valid file name, or values over 1 MiB"),
    rust("kube-crd-twice", W, Kubernetes, "a CustomResourceDefinition defined twice, differently, among the manifests"),
    rust("kube-dns-config", E, Kubernetes, "a pod's DNS settings or host aliases the API server refuses"),
    rust("kube-image", E, Kubernetes, "a container image with leading or trailing whitespace"),
    rust("kube-secret-type", E, Kubernetes, "a Secret without what its type needs: a TLS pair, a docker config, a private key"),
    rust("kube-cidr", E, Kubernetes, "an IP address or CIDR that does not parse, or a NetworkPolicy exception outside its block"),
    rust("yaml-ambiguous-scalar", E, Yaml, "a YAML 1.1 boolean or number where the API takes a string"),
    rust("manifest-not-object", E, Kubernetes, "a document or List item that is not an object"),
    rust("manifest-empty", W, Kubernetes, "a file with no objects"),
    rust("manifest-empty-list", W, Kubernetes, "a List without items"),
    rust("manifest-kustomize-patch", W, Kubernetes, "a Kustomize patch among the manifests, not checked on its own"),
    rust("policy-error", E, Policies, "the policies could not evaluate an object"),
    // Waivers.
    rust("waiver-expired", W, Waivers, "a waiver for this app and environment has expired"),
    // The GitOps repository.
    rust("rollback-hold", E, Repository, "a deploy to an app and environment on hold after a rollback"),
    rust("manifest-drift", E, Repository, "a manifest differs from what its stored values render"),
    rust("manifest-missing", E, Repository, "a manifest its stored values render is not in the repository"),
    rust("manifest-unexpected", E, Repository, "a file its stored values do not render is in the repository"),
    rust("unknown-environment", E, Repository, "an app directory is for an environment the platform does not have"),
    rust("rerender-no-values", E, Repository, "rerender found an app directory without values.yaml"),
    rust("rerender-unknown-env", E, Repository, "rerender found an environment the platform does not have"),
    rust("rerender-wrong-app", E, Repository, "rerender found a values.yaml for another app"),
    rust("rerender-values-too-large", E, Repository, "rerender found a values.yaml over the bound for stored files"),
    // The deploy API (`serve`): refusals before the operation runs.
    rust("token-invalid", E, DeployApi, "the request's OIDC token is missing, malformed, or fails a check"),
    rust("token-unverifiable", E, DeployApi, "the token's issuer could not be reached to verify it"),
    rust("deploy-denied", E, DeployApi, "the platform's deploy policy refuses this identity this change"),
    rust("rate-limited", E, DeployApi, "too many deploy API requests from one identity"),
    rust("request-invalid", E, DeployApi, "the deploy API request is malformed"),
    rust("request-rejected", E, DeployApi, "the operation refused the request as asked"),
    rust("repository-failed", E, DeployApi, "the GitOps repository or the network failed after retries"),
    rust("server-busy", E, DeployApi, "too many deploys in flight on this server"),
    rust("deploy-api-off", E, DeployApi, "the deploy API is not configured on this server"),
    rust("server-answer", E, DeployApi, "a deploy API answer that refuses without saying why"),
];

/// The rule with this id, if gitops-render or the standard platform defines it.
pub fn find(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// docs/rules.md, built in: each rule's section there is its full help (SARIF's
/// `help`), so the page people read and what a code-scanning UI shows beside a result
/// are one text, and the test below that checks the page checks the help too.
const RULES_MD: &str = include_str!("../docs/rules.md");

/// A rule's documentation, in markdown: its section of docs/rules.md without the
/// heading (what it checks, why, what fails, the fix). `None` for an id that is not
/// registered (a platform's own rule).
pub fn help(id: &str) -> Option<&'static str> {
    static SECTIONS: LazyLock<BTreeMap<&'static str, &'static str>> =
        LazyLock::new(|| sections(RULES_MD));
    find(id)?;
    SECTIONS.get(id).copied()
}

/// The `## id` sections of a rules page: each runs to the next heading or thematic
/// break (`---`) outside a fenced code block.
fn sections(md: &str) -> BTreeMap<&str, &str> {
    let mut out = BTreeMap::new();
    let mut current: Option<(&str, usize)> = None;
    let mut in_fence = false;
    let mut offset = 0;
    for line in md.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let bare = line.trim_end();
        if bare.starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        let heading = bare.starts_with("# ") || bare.starts_with("## ");
        if heading || bare == "---" {
            if let Some((id, from)) = current.take() {
                out.insert(id, md[from..start].trim());
            }
        }
        if let Some(id) = bare.strip_prefix("## ") {
            current = Some((id.trim(), offset));
        }
    }
    if let Some((id, from)) = current {
        out.insert(id, md[from..].trim());
    }
    out
}

/// Markdown as plain text, for SARIF viewers that do not render markdown: the text of
/// paragraphs, list items and code blocks, without the markup.
pub fn help_text(markdown: &str) -> String {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let mut out = String::new();
    for event in Parser::new(markdown) {
        match event {
            Event::Text(t) | Event::Code(t) => out.push_str(&t),
            Event::SoftBreak => out.push(' '),
            Event::HardBreak => out.push('\n'),
            Event::Start(Tag::Item) => out.push_str("- "),
            Event::Start(Tag::CodeBlock(_)) if !out.ends_with('\n') && !out.is_empty() => {
                out.push('\n');
            }
            Event::End(TagEnd::Paragraph | TagEnd::CodeBlock | TagEnd::List(_)) => {
                while !out.ends_with("\n\n") {
                    out.push('\n');
                }
            }
            Event::End(TagEnd::Item) if !out.ends_with('\n') => out.push('\n'),
            _ => {}
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                files(&p, ext, out);
            } else if p.extension().is_some_and(|e| e == ext) {
                out.push(p);
            }
        }
    }

    /// The string literal that starts at `text` (after optional whitespace), if any.
    fn literal(text: &str) -> Option<&str> {
        let rest = text.trim_start().strip_prefix('"')?;
        let end = rest.find('"')?;
        let id = &rest[..end];
        let is_id = !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        is_id.then_some(id)
    }

    /// Every rule id the Rust sources can emit: the first argument of
    /// `Finding::error`/`Finding::warning`, a `rule: "..."` field, an arm of a `rule()`
    /// mapping, and any literal of the families only rule ids use.
    fn rust_ids() -> BTreeMap<String, String> {
        const FAMILIES: [&str; 7] = [
            "values-",
            "yaml-",
            "kube-",
            "manifest-",
            "waiver-",
            "rollback-",
            "rerender-",
        ];
        let mut out = BTreeMap::new();
        let mut paths = Vec::new();
        files(&root().join("src"), "rs", &mut paths);
        for path in paths {
            if path.ends_with("src/rules.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // A module's unit tests make findings of any id (a policy's, to render it).
            let text = match text.find("#[cfg(test)]\nmod tests") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
            let shown = path.strip_prefix(root()).unwrap().display().to_string();
            let mut add = |id: &str| {
                out.entry(id.to_string()).or_insert_with(|| shown.clone());
            };
            for marker in [
                "Finding::error(",
                "Finding::warning(",
                "Issue::error(",
                "Issue::warning(",
                "rule: ",
                "=> ",
            ] {
                for (at, _) in text.match_indices(marker) {
                    let Some(id) = literal(&text[at + marker.len()..]) else {
                        continue;
                    };
                    // `=> "..."` arms are rule ids only in a `fn rule` mapping.
                    if marker == "=> " && !FAMILIES.iter().any(|f| id.starts_with(f)) {
                        continue;
                    }
                    add(id);
                }
            }
            // Literals of those families that are not rule ids: a cause of drift that
            // verify reports, and a pause point of the concurrency tests.
            const NOT_RULES: [&str; 2] = ["values-changed", "rollback-decided"];
            for (at, _) in text.match_indices('"') {
                if let Some(id) = literal(&text[at..]) {
                    if FAMILIES.iter().any(|f| id.starts_with(f)) && !NOT_RULES.contains(&id) {
                        add(id);
                    }
                }
            }
        }
        out
    }

    /// `(id, severity)` of every finding the standard platform's policies raise: the
    /// first argument of a `*finding(` call inside a `deny` (error) or `warn` (warning)
    /// rule, or a literal `"rule": "..."`.
    fn rego_ids() -> BTreeMap<String, (Severity, String)> {
        let mut out = BTreeMap::new();
        let mut paths = Vec::new();
        files(&root().join("policies"), "rego", &mut paths);
        for path in paths {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with("_test.rego") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let mut severity = None;
            for line in text.lines() {
                if line.starts_with("deny ") {
                    severity = Some(Severity::Error);
                } else if line.starts_with("warn ") {
                    severity = Some(Severity::Warning);
                } else if !line.starts_with(|c: char| c.is_whitespace() || c == '}') {
                    severity = None;
                }
                let Some(sev) = severity else { continue };
                for marker in ["finding(", "finding_at(", "\"rule\": "] {
                    for (at, _) in line.match_indices(marker) {
                        if let Some(id) = literal(&line[at + marker.len()..]) {
                            out.insert(id.to_string(), (sev, name.clone()));
                        }
                    }
                }
            }
            // A call split over lines: `lib.finding(\n\t\t"id",` (or `finding_at`).
            let calls = ["finding(\n", "finding_at(\n"];
            for (at, marker) in calls.iter().flat_map(|m| text.match_indices(m)) {
                if let Some(id) = literal(&text[at + marker.len()..]) {
                    let before = &text[..at];
                    let head = before
                        .lines()
                        .rev()
                        .find(|l| !l.starts_with(|c: char| c.is_whitespace() || c == '}'))
                        .unwrap_or("");
                    let sev = if head.starts_with("warn ") {
                        Severity::Warning
                    } else {
                        Severity::Error
                    };
                    out.insert(id.to_string(), (sev, name.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn ids_are_unique_and_kebab_case() {
        let mut seen = BTreeSet::new();
        for r in RULES {
            assert!(seen.insert(r.id), "{} is listed twice", r.id);
            assert_eq!(literal(&format!("\"{}\"", r.id)), Some(r.id));
        }
    }

    #[test]
    fn every_rule_the_rust_code_emits_is_registered() {
        let ids = rust_ids();
        assert!(ids.len() >= 25, "the scan found too little: {ids:?}");
        for (id, file) in &ids {
            let rule = find(id).unwrap_or_else(|| panic!("{file} emits `{id}`, not in RULES"));
            // `policy` is raised in Rust on behalf of a policy's bare-string entry.
            assert!(
                !rule.rego || rule.severity.is_none(),
                "`{id}` comes from {file}, but is registered as Rego"
            );
        }
        for r in RULES.iter().filter(|r| !r.rego) {
            assert!(
                ids.contains_key(r.id),
                "`{}` is registered but never emitted",
                r.id
            );
        }
    }

    #[test]
    fn every_rule_the_policies_emit_is_registered_with_its_severity() {
        let ids = rego_ids();
        assert!(ids.len() >= 30, "the scan found too little: {ids:?}");
        for (id, (severity, file)) in &ids {
            let rule = find(id).unwrap_or_else(|| panic!("{file} emits `{id}`, not in RULES"));
            assert!(
                rule.rego,
                "`{id}` comes from {file}, but is registered as Rust"
            );
            assert_eq!(rule.severity, Some(*severity), "{id} in {file}");
        }
        for r in RULES.iter().filter(|r| r.rego && r.severity.is_some()) {
            assert!(
                ids.contains_key(r.id),
                "`{}` is registered but no policy emits it",
                r.id
            );
        }
    }

    /// SARIF's help is each rule's own section: what it checks and the fix, never the
    /// neighbour's text or the page's prose between sections.
    #[test]
    fn every_rule_has_its_docs_section_as_help() {
        for r in RULES {
            let md = help(r.id).unwrap_or_else(|| panic!("no help for {}", r.id));
            assert!(md.len() > 40, "{}: {md:?}", r.id);
            assert!(
                !md.contains("\n## ") && !md.contains("\n# "),
                "{}: {md}",
                r.id
            );
            assert!(!md.ends_with("---"), "{}", r.id);
            let text = help_text(md);
            assert!(
                !text.contains("**") && !text.contains("```"),
                "{}: {text}",
                r.id
            );
        }
        assert_eq!(help("no-such-rule"), None);
        // A fence's `# comment` is not a heading, and the section ends at `---`.
        let md = "## a\n\nx\n```sh\n# comment\n```\ny\n\n---\n\nprose\n## b\n\n**z** `c`\n";
        let s = sections(md);
        assert_eq!(s["a"], "x\n```sh\n# comment\n```\ny");
        assert_eq!(s["b"], "**z** `c`");
        assert_eq!(help_text(s["b"]), "z c");
        assert_eq!(help_text(s["a"]), "x\n\n# comment\n\ny");
    }

    /// docs/rules.md: its table lists exactly the registry's rules, with the same
    /// severity and area, and each has a section whose heading is its id (the anchor).
    #[test]
    fn docs_rules_md_documents_every_rule() {
        let docs = std::fs::read_to_string(root().join("docs/rules.md")).unwrap();
        let mut rows = BTreeMap::new();
        for line in docs.lines() {
            let Some(rest) = line.strip_prefix("| [") else {
                continue;
            };
            let cells: Vec<&str> = rest.split('|').map(str::trim).collect();
            let id = cells[0].split(']').next().unwrap();
            assert!(
                cells[0].ends_with(&format!("](#{id})")),
                "the link of {id} is not its anchor: {line}"
            );
            rows.insert(id.to_string(), (cells[1].to_string(), cells[2].to_string()));
        }
        for r in RULES {
            let severity = r.severity.map_or("error or warning", Severity::as_str);
            assert_eq!(
                rows.remove(r.id),
                Some((severity.to_string(), r.area.as_str().to_string())),
                "docs/rules.md's table row for {}",
                r.id
            );
            assert!(
                docs.contains(&format!("\n## {}\n", r.id)),
                "docs/rules.md has no section `## {}`",
                r.id
            );
        }
        assert!(
            rows.is_empty(),
            "docs/rules.md lists unregistered rules: {rows:?}"
        );
    }
}
