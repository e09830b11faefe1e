//! Custom resources checked against their CustomResourceDefinitions.
//!
//! A CRD's `openAPIV3Schema` is what the API server validates its custom resources
//! with; it is OpenAPI's dialect of JSON Schema draft 4 with Kubernetes extensions. We
//! translate the few places where that dialect differs, then let `jsonschema` judge:
//! - `nullable: true` admits `null`;
//! - `x-kubernetes-int-or-string` admits an integer or a string;
//! - unknown fields are errors, as `kubectl apply` (field validation `Strict`) makes
//!   them, except under `x-kubernetes-preserve-unknown-fields`;
//! - an embedded resource (`x-kubernetes-embedded-resource`) and the root always admit
//!   `apiVersion`, `kind` and `metadata`.
//!
//! The definitions come from `--crd DIR` (kubeconform's "schema location") and from the
//! manifests being validated themselves: a chart that ships its CRDs checks its own
//! custom resources.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::kube::{Issue, Scope};

struct Version {
    validator: Option<jsonschema::Validator>,
    /// The schema, kept when it gives defaults: the API server fills them in before it
    /// validates, so a required field with a default may be left out.
    defaults: Option<Value>,
}

struct Definition {
    scope: Scope,
    /// By version name (`v1`, `v1beta1`): only served versions.
    versions: HashMap<String, Version>,
}

/// The definitions known to one run, by (group, kind).
#[derive(Default)]
pub struct Crds {
    defs: HashMap<(String, String), Definition>,
}

/// Why a CustomResourceDefinition could not be used.
#[derive(Debug, Clone)]
pub struct Unusable {
    pub pointer: String,
    pub message: String,
}

impl Crds {
    pub fn is_empty(&self) -> bool {
        self.defs.is_empty()
    }

    /// Adds one CustomResourceDefinition object (apiextensions.k8s.io/v1). A later
    /// definition of the same group and kind replaces an earlier one.
    pub fn add(&mut self, crd: &Value) -> Result<(), Unusable> {
        let text = |p: &str| crd.pointer(p).and_then(Value::as_str).unwrap_or("");
        let (group, kind) = (text("/spec/group"), text("/spec/names/kind"));
        if group.is_empty() || kind.is_empty() {
            return Err(Unusable {
                pointer: "/spec".into(),
                message: "the CustomResourceDefinition has no spec.group or spec.names.kind".into(),
            });
        }
        let scope = match text("/spec/scope") {
            "Cluster" => Scope::Cluster,
            _ => Scope::Namespaced,
        };
        let mut versions = HashMap::new();
        let list = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for (i, v) in list.iter().enumerate() {
            let Some(name) = v.get("name").and_then(Value::as_str) else {
                continue;
            };
            if v.get("served") == Some(&Value::Bool(false)) {
                continue;
            }
            let schema = v.pointer("/schema/openAPIV3Schema");
            let defaults = schema.filter(|s| gives_defaults(s)).cloned();
            let validator = match schema {
                Some(schema) => {
                    let translated = translate(schema, true);
                    let built = jsonschema::draft4::options()
                        .should_validate_formats(false)
                        .with_keyword(GO_PATTERN, go_pattern)
                        .build(&translated)
                        .map_err(|e| Unusable {
                            pointer: format!("/spec/versions/{i}/schema/openAPIV3Schema"),
                            message: format!(
                                "the schema of version {name} is not a valid schema: {e}"
                            ),
                        })?;
                    Some(built)
                }
                None => None,
            };
            versions.insert(
                name.to_string(),
                Version {
                    validator,
                    defaults,
                },
            );
        }
        self.defs.insert(
            (group.to_string(), kind.to_string()),
            Definition { scope, versions },
        );
        Ok(())
    }

    /// The scope a definition gives a kind of a group, if one was given.
    pub fn scope(&self, group: &str, kind: &str) -> Option<Scope> {
        self.defs
            .get(&(group.to_string(), kind.to_string()))
            .map(|d| d.scope)
    }

    /// Every (group, kind, scope) known.
    pub fn scopes(&self) -> impl Iterator<Item = (&str, &str, Scope)> {
        self.defs
            .iter()
            .map(|((g, k), d)| (g.as_str(), k.as_str(), d.scope))
    }

    /// Checks a custom resource. None when no definition of its group and kind is known
    /// (the caller warns that it was not checked).
    pub fn check(&self, object: &Value, api_version: &str, kind: &str) -> Option<Vec<Issue>> {
        let (group, version) = api_version.rsplit_once('/')?;
        let def = self.defs.get(&(group.to_string(), kind.to_string()))?;
        let Some(v) = def.versions.get(version) else {
            let mut served: Vec<&str> = def.versions.keys().map(String::as_str).collect();
            served.sort_unstable();
            return Some(vec![Issue::error(
                "kube-api-version",
                "/apiVersion",
                format!(
                    "the CustomResourceDefinition of `{kind}` serves no version `{version}` (it serves: {})",
                    if served.is_empty() { "none".to_string() } else { served.join(", ") }
                ),
            )]);
        };
        let mut issues = super::kube::custom_resource_metadata(object, kind);
        let Some(validator) = &v.validator else {
            return Some(issues);
        };
        let defaulted;
        let object = match &v.defaults {
            Some(schema) => {
                let mut copy = object.clone();
                apply_defaults(schema, &mut copy);
                defaulted = copy;
                &defaulted
            }
            None => object,
        };
        for e in validator.iter_errors(object) {
            let pointer = e.instance_path().as_str().to_string();
            if let jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } =
                e.kind()
            {
                for key in unexpected {
                    issues.push(Issue {
                        at_key: true,
                        ..Issue::error(
                            "kube-unknown-field",
                            format!("{pointer}/{}", crate::pointer::escape(key)),
                            format!("unknown field `{key}`"),
                        )
                    });
                }
                continue;
            }
            let rule = if matches!(
                e.kind(),
                jsonschema::error::ValidationErrorKind::Required { .. }
            ) {
                "kube-required-field"
            } else {
                "kube-schema"
            };
            let at = crate::values::pointer_to_dotted(&pointer);
            issues.push(Issue::error(
                rule,
                pointer,
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{at}: {e}")
                },
            ));
        }
        Some(issues)
    }
}

/// Whether a structural schema gives a default anywhere.
fn gives_defaults(schema: &Value) -> bool {
    match schema {
        Value::Object(map) => map.iter().any(|(k, v)| k == "default" || gives_defaults(v)),
        Value::Array(items) => items.iter().any(gives_defaults),
        _ => false,
    }
}

/// Fills in defaults as the API server does before validating a custom resource: a
/// property that is absent (or null where the schema is not nullable) takes its
/// `default`, itself defaulted further; then properties, map values and list items are
/// defaulted within. Structural schemas allow defaults nowhere else.
fn apply_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = schema.get("properties") {
                for (name, sub) in props {
                    let nullable = sub.get("nullable") == Some(&Value::Bool(true));
                    let missing = match map.get(name) {
                        None => true,
                        Some(Value::Null) => !nullable,
                        Some(_) => false,
                    };
                    if missing {
                        if let Some(default) = sub.get("default") {
                            map.insert(name.clone(), default.clone());
                        }
                    }
                    if let Some(child) = map.get_mut(name) {
                        apply_defaults(sub, child);
                    }
                }
            }
            if let Some(extra) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for child in map.values_mut() {
                    apply_defaults(extra, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for child in items {
                    apply_defaults(item, child);
                }
            }
        }
        _ => {}
    }
}

/// The keyword a CRD's `pattern` becomes, checked by [`GoPattern`].
const GO_PATTERN: &str = "x-gitops-render-go-pattern";

/// A string matches a Go regular expression (unanchored, as Go's `MatchString`).
struct GoPattern(regex::Regex);

impl<'i> jsonschema::Keyword<'i> for GoPattern {
    fn validate(&self, instance: &'i Value) -> Result<(), jsonschema::ValidationError<'i>> {
        if self.is_valid(instance) {
            return Ok(());
        }
        Err(jsonschema::ValidationError::custom(format!(
            "{instance} does not match the pattern `{}`",
            self.0.as_str()
        )))
    }

    fn is_valid(&self, instance: &'i Value) -> bool {
        instance.as_str().is_none_or(|s| self.0.is_match(s))
    }
}

/// Compiles a pattern; one that is not a regular expression makes the definition
/// unusable, as the API server refuses such a CRD.
fn go_pattern<'a>(
    _: &'a Map<String, Value>,
    value: &'a Value,
    _: jsonschema::paths::Location,
) -> Result<Box<dyn for<'i> jsonschema::Keyword<'i>>, jsonschema::ValidationError<'a>> {
    let text = value.as_str().unwrap_or_default();
    match regex::Regex::new(text) {
        Ok(re) => Ok(Box::new(GoPattern(re))),
        // The parser's message draws the pattern over several lines; its last says why.
        Err(e) => Err(jsonschema::ValidationError::custom(format!(
            "the pattern `{text}` is not a valid regular expression ({})",
            e.to_string().lines().last().unwrap_or_default().trim()
        ))),
    }
}

/// OpenAPI v3 (Kubernetes structural schema) to JSON Schema draft 4.
fn translate(schema: &Value, root: bool) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (k, v) in map {
        let v = match k.as_str() {
            "properties" | "patternProperties" | "definitions" => match v {
                Value::Object(props) => Value::Object(
                    props
                        .iter()
                        .map(|(name, s)| (name.clone(), translate(s, false)))
                        .collect(),
                ),
                other => other.clone(),
            },
            "items" | "not" | "additionalItems" => match v {
                Value::Array(list) => {
                    Value::Array(list.iter().map(|s| translate(s, false)).collect())
                }
                other => translate(other, false),
            },
            "additionalProperties" if v.is_object() => translate(v, false),
            "allOf" | "anyOf" | "oneOf" => match v {
                Value::Array(list) => {
                    Value::Array(list.iter().map(|s| translate(s, false)).collect())
                }
                other => other.clone(),
            },
            // A Go regular expression, which JSON Schema's `pattern` (ECMA 262) would
            // misread or refuse. Go's `\Q...\E` quoting is the one form `regex` lacks:
            // such a pattern is not checked rather than wrongly refused.
            "pattern" => {
                if v.as_str().is_some_and(|p| !p.contains("\\Q")) {
                    out.insert(GO_PATTERN.into(), v.clone());
                }
                continue;
            }
            // Kubernetes' CEL rules and list/map semantics are beyond a schema check.
            k if k.starts_with("x-kubernetes-") => continue,
            "nullable" | "default" | "example" | "externalDocs" => continue,
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    let flag = |name: &str| map.get(name) == Some(&Value::Bool(true));
    if flag("x-kubernetes-int-or-string") {
        out.remove("type");
        out.insert(
            "anyOf".into(),
            json!([{"type": "integer"}, {"type": "string"}]),
        );
    }
    if root || flag("x-kubernetes-embedded-resource") {
        let props = out
            .entry("properties")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("properties is an object");
        for (name, s) in [
            ("apiVersion", json!({"type": "string"})),
            ("kind", json!({"type": "string"})),
            ("metadata", json!({"type": "object"})),
        ] {
            props.entry(name).or_insert(s);
        }
    }
    let is_object = map.get("type").and_then(Value::as_str) == Some("object")
        || (root && map.get("type").is_none());
    if is_object
        && out.contains_key("properties")
        && !out.contains_key("additionalProperties")
        && !flag("x-kubernetes-preserve-unknown-fields")
    {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    if flag("nullable") {
        if let Some(t) = out.get("type").cloned() {
            out.insert("type".into(), json!([t, "null"]));
        } else if let Some(any) = out.remove("anyOf") {
            let mut list = any.as_array().cloned().unwrap_or_default();
            list.push(json!({"type": "null"}));
            out.insert("anyOf".into(), Value::Array(list));
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Cluster",
                "names": {"kind": "Widget", "plural": "widgets"},
                "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {"type": "object", "required": ["size"], "properties": {
                        "size": {"type": "integer", "minimum": 1},
                        "port": {"x-kubernetes-int-or-string": true},
                        "note": {"type": "string", "nullable": true},
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                    }}}
                }}}]
            }
        })
    }

    #[test]
    fn custom_resources_are_checked_against_their_definition() {
        let mut crds = Crds::default();
        crds.add(&crd()).unwrap();
        assert_eq!(crds.scope("example.com", "Widget"), Some(Scope::Cluster));
        let ok = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"size": 2, "port": "http", "note": null, "extra": {"anything": 1}}});
        assert_eq!(crds.check(&ok, "example.com/v1", "Widget").unwrap(), vec![]);
        let bad = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"size": 0, "colour": "red"}});
        let issues = crds.check(&bad, "example.com/v1", "Widget").unwrap();
        let rules: Vec<(&str, &str)> = issues
            .iter()
            .map(|i| (i.rule, i.pointer.as_str()))
            .collect();
        assert!(
            rules.contains(&("kube-unknown-field", "/spec/colour")),
            "{issues:?}"
        );
        assert!(rules.contains(&("kube-schema", "/spec/size")), "{issues:?}");
        let other = crds.check(&bad, "example.com/v2", "Widget").unwrap();
        assert_eq!(other[0].rule, "kube-api-version");
        assert!(crds.check(&bad, "example.com/v1", "Gadget").is_none());
    }
}
