//! One walk of an object beside its kind's API schema: unknown fields, wrong types and
//! missing required fields, every one of them, each at its JSON pointer.
//!
//! The schema is k8s-openapi's schemars output for the kind (the upstream OpenAPI
//! document of the compiled-in release). It is compiled once per kind into a small
//! arena of `Shape`s, so the walk over an object follows indices instead of looking
//! `type`, `format`, `properties` and `$ref` up in JSON at every node, and allocates
//! nothing but the pointer it grows and shrinks (and the issues it reports).
//!
//! What each shape accepts is what k8s-openapi's own deserialisers accept, which is what
//! `kubectl apply` sends the API server without complaint:
//! - a field of an object may be `null` (every field deserialises through an `Option`;
//!   a `null` required field is reported as missing, since the API server sees none);
//! - `type: object` without `properties` or `additionalProperties` (RawExtension,
//!   JSON, FieldsV1 and the empty specs) holds any value at all;
//! - `x-kubernetes-int-or-string`: IntOrString takes a 32-bit integer or a string,
//!   Quantity any number or a string (the quantity's syntax is `kube-quantity`'s);
//! - `format: int32|int64` bound the integer; `format: date-time` must parse as the
//!   RFC 3339 timestamp k8s-openapi reads it as (`jiff::Timestamp`); `format: byte` is
//!   standard base64 with padding, or `null`;
//! - `oneOf` (JSONSchemaPropsOrBool, -OrArray, -OrStringArray) takes the first branch
//!   the value's shape fits.

use serde_json::Value;

use super::kube::Issue;
use crate::pointer::{escape, resolve_ref};

/// What a schema node accepts. Indices point into the kind's arena.
#[derive(Debug)]
enum Shape {
    /// Any value (RawExtension, JSON, FieldsV1, and unknown schema forms).
    Any,
    String,
    /// `format: byte`: base64 (standard alphabet, padded), or null.
    Byte,
    /// `format: date-time` (Time, MicroTime).
    Time,
    Bool,
    Int32,
    Int64,
    /// `type: number` (`format: double`): any number.
    Number,
    IntOrString,
    Quantity,
    List(u32),
    Map(u32),
    Struct {
        /// Sorted by name, for binary search.
        fields: Box<[(Box<str>, u32)]>,
        required: Box<[Box<str>]>,
    },
    OneOf(Box<[u32]>),
}

/// A kind's schema, compiled.
#[derive(Debug)]
pub struct Compiled {
    shapes: Vec<Shape>,
}

impl Compiled {
    /// Compiles the root schema of a kind (schemars output with `$defs`).
    pub fn new(root: &Value) -> Self {
        let mut c = Compiler {
            root,
            shapes: Vec::new(),
            seen: std::collections::HashMap::new(),
        };
        c.compile(root);
        Compiled { shapes: c.shapes }
    }

    /// Walks `object` (the whole object, root shape 0) and appends its issues.
    pub fn check(&self, object: &Value, issues: &mut Vec<Issue>) {
        let mut walk = Walk {
            shapes: &self.shapes,
            pointer: String::with_capacity(128),
            scratch: Vec::new(),
            issues,
        };
        walk.node(0, object);
    }
}

struct Compiler<'a> {
    root: &'a Value,
    shapes: Vec<Shape>,
    /// Resolved schema node (by address) -> its shape: shared definitions compile once
    /// and recursive ones (JSONSchemaProps) end.
    seen: std::collections::HashMap<*const Value, u32>,
}

/// Fields the OpenAPI document lists as required that the API server fills in before it
/// validates, so leaving them out is fine (`pkg/apis/*/v1/defaults.go`).
fn defaulted_before_validation(definition: &str) -> &'static [&'static str] {
    match definition.rsplit('/').next().unwrap_or("") {
        // SetDefaults_RoleBinding and SetDefaults_ClusterRoleBinding.
        "io.k8s.api.rbac.v1.RoleRef" => &["apiGroup"],
        _ => &[],
    }
}

impl<'a> Compiler<'a> {
    fn compile(&mut self, schema: &'a Value) -> u32 {
        // Quantity and IntOrString have the same schema body; only the name of the
        // definition tells them apart, and they differ in what they accept.
        let reference = schema.get("$ref").and_then(Value::as_str).unwrap_or("");
        let quantity = reference.ends_with(".pkg.api.resource.Quantity");
        let schema = resolve_ref(self.root, schema);
        let key = schema as *const Value;
        if let Some(&id) = self.seen.get(&key) {
            return id;
        }
        let id = self.shapes.len() as u32;
        self.shapes.push(Shape::Any);
        self.seen.insert(key, id);
        let mut shape = self.shape(schema, quantity);
        if let Shape::Struct { required, .. } = &mut shape {
            let defaulted = defaulted_before_validation(reference);
            if !defaulted.is_empty() {
                *required = required
                    .iter()
                    .filter(|r| !defaulted.contains(&r.as_ref()))
                    .cloned()
                    .collect();
            }
        }
        self.shapes[id as usize] = shape;
        id
    }

    fn shape(&mut self, schema: &'a Value, quantity: bool) -> Shape {
        if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
            return if quantity {
                Shape::Quantity
            } else {
                Shape::IntOrString
            };
        }
        if let Some(Value::Array(branches)) = schema.get("oneOf") {
            return Shape::OneOf(branches.iter().map(|b| self.compile(b)).collect());
        }
        let format = schema.get("format").and_then(Value::as_str);
        match schema.get("type").and_then(Value::as_str) {
            Some("string") => match format {
                Some("byte") => Shape::Byte,
                Some("date-time") => Shape::Time,
                _ => Shape::String,
            },
            Some("boolean") => Shape::Bool,
            Some("integer") => match format {
                Some("int32") => Shape::Int32,
                _ => Shape::Int64,
            },
            Some("number") => Shape::Number,
            Some("array") => match schema.get("items") {
                Some(items) => Shape::List(self.compile(items)),
                None => Shape::List(self.any()),
            },
            Some("object") => {
                if let Some(Value::Object(props)) = schema.get("properties") {
                    let mut fields: Vec<(Box<str>, u32)> = props
                        .iter()
                        .map(|(name, sub)| (name.as_str().into(), self.compile(sub)))
                        .collect();
                    fields.sort_by(|a, b| a.0.cmp(&b.0));
                    let required = schema
                        .get("required")
                        .and_then(Value::as_array)
                        .map(|r| r.iter().filter_map(Value::as_str).map(Into::into).collect())
                        .unwrap_or_default();
                    Shape::Struct {
                        fields: fields.into(),
                        required,
                    }
                } else if let Some(extra) =
                    schema.get("additionalProperties").filter(|a| a.is_object())
                {
                    Shape::Map(self.compile(extra))
                } else {
                    Shape::Any
                }
            }
            _ => Shape::Any,
        }
    }

    fn any(&mut self) -> u32 {
        self.shapes.push(Shape::Any);
        (self.shapes.len() - 1) as u32
    }
}

struct Walk<'s, 'i> {
    shapes: &'s [Shape],
    pointer: String,
    /// Reused for base64 decoding, so a Secret's data allocates once per object.
    scratch: Vec<u8>,
    issues: &'i mut Vec<Issue>,
}

impl Walk<'_, '_> {
    fn node(&mut self, id: u32, value: &Value) {
        let shapes = self.shapes;
        match (&shapes[id as usize], value) {
            (Shape::Any, _) => {}
            (Shape::Struct { fields, required }, Value::Object(map)) => {
                for name in required.iter() {
                    // `metadata.name` has its own rules (generateName) in kube.rs.
                    // `containers: null` is as absent to the API server as no key.
                    if map.get(name.as_ref()).is_none_or(Value::is_null)
                        && !(self.pointer.is_empty() && name.as_ref() == "metadata")
                    {
                        self.missing(name);
                    }
                }
                for (key, v) in map {
                    match fields.binary_search_by(|(f, _)| f.as_ref().cmp(key.as_str())) {
                        Ok(_) if v.is_null() => {}
                        Ok(i) => self.child_key(key, fields[i].1, v),
                        Err(_) => self.unknown(key, fields),
                    }
                }
            }
            (Shape::Map(item), Value::Object(map)) => {
                for (key, v) in map {
                    self.child_key(key, *item, v);
                }
            }
            (Shape::List(item), Value::Array(items)) => {
                for (i, v) in items.iter().enumerate() {
                    let len = self.pointer.len();
                    self.pointer.push('/');
                    push_index(&mut self.pointer, i);
                    self.node(*item, v);
                    self.pointer.truncate(len);
                }
            }
            (Shape::OneOf(branches), v) => {
                match branches.iter().find(|b| fits(&shapes[**b as usize], v)) {
                    Some(b) => self.node(*b, v),
                    None => self.wrong(Expected::OneOf(branches), v),
                }
            }
            (Shape::String, Value::String(_))
            | (Shape::Bool, Value::Bool(_))
            | (Shape::Number, Value::Number(_))
            | (Shape::Quantity, Value::String(_) | Value::Number(_))
            | (Shape::IntOrString, Value::String(_))
            | (Shape::Byte, Value::Null) => {}
            (shape @ (Shape::Int32 | Shape::IntOrString), Value::Number(n)) => match n.as_i64() {
                Some(i) if i32::try_from(i).is_ok() => {}
                _ if n.is_f64() => self.wrong(Expected::Shape(shape), value),
                _ => self.out_of_range(n, 32),
            },
            (Shape::Int64, Value::Number(n)) => match n.as_i64() {
                Some(_) => {}
                None if n.is_f64() => self.wrong(Expected::Shape(&Shape::Int64), value),
                None => self.out_of_range(n, 64),
            },
            (Shape::Time, Value::String(s)) => {
                if let Err(e) = s.parse::<jiff::Timestamp>() {
                    self.report(
                        "kube-schema",
                        format!("expected an RFC 3339 date-time such as `2026-01-02T15:04:05Z`, found {}: {e}", found(value)),
                        Some("write the time in UTC with a `Z`, or with an offset such as `+01:00`".into()),
                    );
                }
            }
            (Shape::Byte, Value::String(s)) => {
                use base64::Engine;
                self.scratch.clear();
                if let Err(e) =
                    base64::engine::general_purpose::STANDARD.decode_vec(s, &mut self.scratch)
                {
                    self.report(
                        "kube-schema",
                        format!("expected a base64-encoded string, found {}, which is not valid base64: {e}", found(value)),
                        Some("encode the value with `base64 -w0` (in a Secret, or put the plain text under `stringData`)".into()),
                    );
                }
            }
            (shape, v) => self.wrong(Expected::Shape(shape), v),
        }
    }

    fn child_key(&mut self, key: &str, id: u32, value: &Value) {
        let len = self.pointer.len();
        self.pointer.push('/');
        self.pointer.push_str(&escape(key));
        self.node(id, value);
        self.pointer.truncate(len);
    }

    fn missing(&mut self, name: &str) {
        let at = crate::values::pointer_to_dotted(&self.pointer);
        let full = if at.is_empty() {
            name.to_string()
        } else {
            format!("{at}.{name}")
        };
        self.issues.push(Issue::error(
            "kube-required-field",
            self.pointer.clone(),
            format!("missing required field `{full}`"),
        ));
    }

    fn unknown(&mut self, key: &str, fields: &[(Box<str>, u32)]) {
        let len = self.pointer.len();
        let at = crate::values::pointer_to_dotted(&self.pointer);
        self.pointer.push('/');
        self.pointer.push_str(&escape(key));
        let message = if at.is_empty() {
            format!("unknown field `{key}`")
        } else {
            format!("unknown field `{key}` in {at}")
        };
        let mut issue = Issue {
            at_key: true,
            ..Issue::error("kube-unknown-field", self.pointer.clone(), message)
        };
        let lower = key.to_ascii_lowercase();
        issue.help = fields
            .iter()
            .map(|(f, _)| (strsim::jaro_winkler(&lower, &f.to_ascii_lowercase()), f))
            .filter(|(score, _)| *score >= 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, f)| format!("did you mean `{f}`?"));
        self.issues.push(issue);
        self.pointer.truncate(len);
    }

    fn out_of_range(&mut self, n: &serde_json::Number, bits: u32) {
        let (min, max) = if bits == 32 {
            (i32::MIN as i64, i32::MAX as i64)
        } else {
            (i64::MIN, i64::MAX)
        };
        self.report(
            "kube-schema",
            format!("{n} is out of range: expected a {bits}-bit integer, from {min} to {max}"),
            None,
        );
    }

    fn wrong(&mut self, expected: Expected<'_>, value: &Value) {
        let what = expected.describe(self.shapes);
        let help = type_help(&expected, value);
        self.report(
            "kube-schema",
            format!("expected {what}, found {}", found(value)),
            help,
        );
    }

    fn report(&mut self, rule: &'static str, message: String, help: Option<String>) {
        let at = crate::values::pointer_to_dotted(&self.pointer);
        let message = if at.is_empty() {
            message
        } else {
            format!("{at}: {message}")
        };
        let mut issue = Issue::error(rule, self.pointer.clone(), message);
        issue.help = help;
        self.issues.push(issue);
    }
}

fn push_index(pointer: &mut String, i: usize) {
    use std::fmt::Write;
    let _ = write!(pointer, "{i}");
}

/// Whether a value's shape is one a `oneOf` branch takes (its content is judged after).
fn fits(shape: &Shape, value: &Value) -> bool {
    matches!(
        (shape, value),
        (Shape::Any, _)
            | (Shape::Struct { .. } | Shape::Map(_), Value::Object(_))
            | (Shape::List(_), Value::Array(_))
            | (Shape::Bool, Value::Bool(_))
            | (Shape::String | Shape::Byte | Shape::Time, Value::String(_))
            | (
                Shape::Int32 | Shape::Int64 | Shape::Number,
                Value::Number(_)
            )
            | (
                Shape::IntOrString | Shape::Quantity,
                Value::String(_) | Value::Number(_)
            )
    )
}

enum Expected<'a> {
    Shape(&'a Shape),
    OneOf(&'a [u32]),
}

impl Expected<'_> {
    fn describe(&self, shapes: &[Shape]) -> String {
        match self {
            Expected::Shape(shape) => describe(shape).into(),
            Expected::OneOf(branches) => branches
                .iter()
                .map(|b| describe(&shapes[*b as usize]))
                .collect::<Vec<_>>()
                .join(" or "),
        }
    }

    fn wants(&self, f: impl Fn(&Shape) -> bool) -> bool {
        match self {
            Expected::Shape(s) => f(s),
            _ => false,
        }
    }
}

fn describe(shape: &Shape) -> &'static str {
    match shape {
        Shape::Any => "any value",
        Shape::String => "a string",
        Shape::Byte => "a base64-encoded string",
        Shape::Time => "an RFC 3339 date-time string",
        Shape::Bool => "a boolean (true or false)",
        Shape::Int32 | Shape::Int64 => "an integer",
        Shape::Number => "a number",
        Shape::IntOrString => "an integer or a string",
        Shape::Quantity => "a quantity (a string such as `500m` or `1Gi`, or a number)",
        Shape::List(_) => "a list",
        Shape::Map(_) | Shape::Struct { .. } => "a mapping",
        Shape::OneOf(_) => "one of several forms",
    }
}

/// What was found, for a message: the scalar itself, or its shape.
fn found(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) if n.is_f64() => format!("the number {n}"),
        Value::Number(n) => format!("the integer {n}"),
        Value::String(s) if s.chars().count() > 60 => {
            let cut: String = s.chars().take(57).collect();
            format!("the string \"{}...\"", cut.escape_debug())
        }
        Value::String(s) => format!("the string \"{}\"", s.escape_debug()),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// A hint for the usual wrong-type mistakes: an unquoted `true` or `8080` where the API
/// takes a string, a quoted `"3"` where it takes a number, an empty (`null`) or scalar
/// value where it takes a list or a mapping.
fn type_help(expected: &Expected<'_>, value: &Value) -> Option<String> {
    let list = expected.wants(|s| matches!(s, Shape::List(_)));
    let mapping = expected.wants(|s| matches!(s, Shape::Map(_) | Shape::Struct { .. }));
    match value {
        v @ (Value::Bool(_) | Value::Number(_))
            if expected.wants(|s| matches!(s, Shape::String)) =>
        {
            Some(format!("quote the value: \"{v}\""))
        }
        Value::String(s)
            if expected.wants(|s| matches!(s, Shape::Int32 | Shape::Int64 | Shape::Number))
                && s.trim().parse::<f64>().is_ok() =>
        {
            Some(format!("remove the quotes: {}", s.trim()))
        }
        Value::String(s)
            if expected.wants(|s| matches!(s, Shape::Bool))
                && matches!(s.as_str(), "true" | "false") =>
        {
            Some(format!("remove the quotes: {s}"))
        }
        // YAML 1.1's booleans: kubectl and Helm read them as such, kustomize, Flux and
        // this reader (YAML 1.2) as strings; only `true`/`false` mean the same to all.
        Value::String(s)
            if expected.wants(|s| matches!(s, Shape::Bool))
                && crate::yaml::yaml11_bool(s).is_some() =>
        {
            let b = crate::yaml::yaml11_bool(s).unwrap_or_default();
            Some(format!("unquoted, `{s}` is {b} to YAML 1.1 readers (kubectl, Helm) and a string to YAML 1.2 ones (kustomize, Flux, this one): write {b}"))
        }
        Value::Null if list => Some("write `[]` for an empty list, or remove the field".into()),
        Value::Null if mapping => {
            Some("write `{}` for an empty mapping, or remove the field".into())
        }
        Value::String(_) | Value::Number(_) | Value::Bool(_) if list => {
            Some("this field takes a list: write it as `- item` lines or `[item]`".into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::kube::check;
    use super::*;
    use serde_json::json;

    fn deployment(spec: Value) -> Value {
        let mut d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}},
                                  "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}
        });
        merge(&mut d, spec);
        d
    }

    /// Overlays `patch` on `base`, mapping by mapping (lists and scalars replace).
    fn merge(base: &mut Value, patch: Value) {
        match (base, patch) {
            (Value::Object(b), Value::Object(p)) => {
                for (k, v) in p {
                    match b.get_mut(&k) {
                        Some(slot) if v.is_object() => merge(slot, v),
                        _ => {
                            b.insert(k, v);
                        }
                    }
                }
            }
            (b, p) => *b = p,
        }
    }

    /// (rule, pointer, message, help) of the schema issues, sorted by pointer.
    fn schema_issues(object: &Value) -> Vec<(&'static str, String, String, Option<String>)> {
        let mut out: Vec<_> = check(object)
            .into_iter()
            .filter(|i| {
                i.rule.starts_with("kube-schema")
                    || i.rule.starts_with("kube-unknown")
                    || i.rule == "kube-required-field"
            })
            .map(|i| (i.rule, i.pointer, i.message, i.help))
            .collect();
        out.sort_by(|a, b| a.1.cmp(&b.1));
        out
    }

    #[test]
    fn every_problem_of_an_object_is_reported_with_what_was_expected() {
        let d = deployment(json!({"spec": {
            "replicas": "3",
            "paused": "true",
            "template": {"spec": {"containers": [{
                "name": "c", "image": "i:1", "imagePullPolicyy": "Always",
                "ports": 8080, "args": [1, "x"], "tty": null,
            }]}}
        }}));
        let c = "/spec/template/spec/containers/0";
        assert_eq!(
            schema_issues(&d),
            vec![
                ("kube-schema", "/spec/paused".into(),
                 "spec.paused: expected a boolean (true or false), found the string \"true\"".into(),
                 Some("remove the quotes: true".into())),
                ("kube-schema", "/spec/replicas".into(),
                 "spec.replicas: expected an integer, found the string \"3\"".into(),
                 Some("remove the quotes: 3".into())),
                ("kube-schema", format!("{c}/args/0"),
                 "spec.template.spec.containers.0.args.0: expected a string, found the integer 1".into(),
                 Some("quote the value: \"1\"".into())),
                ("kube-unknown-field", format!("{c}/imagePullPolicyy"),
                 "unknown field `imagePullPolicyy` in spec.template.spec.containers.0".into(),
                 Some("did you mean `imagePullPolicy`?".into())),
                ("kube-schema", format!("{c}/ports"),
                 "spec.template.spec.containers.0.ports: expected a list, found the integer 8080".into(),
                 Some("this field takes a list: write it as `- item` lines or `[item]`".into())),
            ]
        );
        let unknown = check(&d)
            .into_iter()
            .find(|i| i.rule == "kube-unknown-field")
            .unwrap();
        assert!(unknown.at_key);
    }

    #[test]
    fn null_is_absent_in_a_field_and_wrong_in_a_list_or_map() {
        // Every field of an object deserialises through an Option: null is no value,
        // and a required one is missing.
        let d = deployment(json!({"spec": {"replicas": null, "template": {"spec": {
            "volumes": null, "containers": [{"name": "c", "image": "i:1", "ports": null}],
            "initContainers": [null], "nodeSelector": {"disk": null},
        }}}}));
        let p = "/spec/template/spec";
        assert_eq!(
            schema_issues(&d),
            vec![
                (
                    "kube-schema",
                    format!("{p}/initContainers/0"),
                    "spec.template.spec.initContainers.0: expected a mapping, found null".into(),
                    Some("write `{}` for an empty mapping, or remove the field".into())
                ),
                (
                    "kube-schema",
                    format!("{p}/nodeSelector/disk"),
                    "spec.template.spec.nodeSelector.disk: expected a string, found null".into(),
                    None
                ),
            ]
        );
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                         "spec": {"containers": null}});
        assert_eq!(
            schema_issues(&pod),
            vec![(
                "kube-required-field",
                "/spec".into(),
                "missing required field `spec.containers`".into(),
                None
            )]
        );
    }

    #[test]
    fn yaml_11_boolean_words_get_the_fix_and_the_readers_that_differ() {
        let d = deployment(json!({"spec": {"paused": "yes", "template": {"spec": {
            "hostNetwork": "off", "containers": [{"name": "c", "image": "i:1", "tty": "sure"}],
        }}}}));
        let helps: Vec<(String, Option<String>)> =
            schema_issues(&d).into_iter().map(|i| (i.1, i.3)).collect();
        let kubectl = |word: &str, b: bool| {
            Some(format!("unquoted, `{word}` is {b} to YAML 1.1 readers (kubectl, Helm) and a string to YAML 1.2 ones (kustomize, Flux, this one): write {b}"))
        };
        assert_eq!(
            helps,
            vec![
                ("/spec/paused".into(), kubectl("yes", true)),
                ("/spec/template/spec/containers/0/tty".into(), None),
                (
                    "/spec/template/spec/hostNetwork".into(),
                    kubectl("off", false)
                ),
            ]
        );
    }

    #[test]
    fn numbers_are_held_to_their_format() {
        let d = deployment(
            json!({"spec": {"replicas": 3000000000u64, "minReadySeconds": 1.5,
            "progressDeadlineSeconds": -5,
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1.5}}}}),
        );
        let got: Vec<_> = schema_issues(&d).into_iter().map(|i| (i.1, i.2)).collect();
        assert_eq!(
            got,
            vec![
                ("/spec/minReadySeconds".into(),
                 "spec.minReadySeconds: expected an integer, found the number 1.5".into()),
                ("/spec/replicas".into(),
                 "spec.replicas: 3000000000 is out of range: expected a 32-bit integer, from -2147483648 to 2147483647".into()),
                ("/spec/strategy/rollingUpdate/maxUnavailable".into(),
                 "spec.strategy.rollingUpdate.maxUnavailable: expected an integer or a string, found the number 1.5".into()),
            ]
        );
        // A Quantity takes any number or a string (its syntax is kube-quantity's), an
        // IntOrString a 32-bit integer or a string; both have the same schema body.
        let d = deployment(json!({"spec": {"template": {"spec": {"containers": [{
            "name": "c", "image": "i:1",
            "resources": {"limits": {"cpu": 0.5, "memory": "1Gi"}, "requests": {"cpu": true}},
            "livenessProbe": {"httpGet": {"port": "http"}}, "readinessProbe": {"tcpSocket": {"port": 8080}},
        }]}}}}));
        let got: Vec<_> = schema_issues(&d).into_iter().map(|i| (i.1, i.2)).collect();
        assert_eq!(
            got,
            vec![(
                "/spec/template/spec/containers/0/resources/requests/cpu".into(),
                "spec.template.spec.containers.0.resources.requests.cpu: expected a quantity (a string such as `500m` or `1Gi`, or a number), found the boolean true".into()
            )]
        );
    }

    #[test]
    fn times_and_bytes_are_parsed_as_the_typed_api_reads_them() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "creationTimestamp": "yesterday"},
            "data": {"ok": "dGVzdA==", "empty": "", "none": null, "bad": "not base64!", "unpadded": "dGVzdA"}});
        let got: Vec<_> = schema_issues(&secret).into_iter().map(|i| i.1).collect();
        assert_eq!(
            got,
            ["/data/bad", "/data/unpadded", "/metadata/creationTimestamp"]
        );
        let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
            "spec": {"renewTime": "2026-01-02T03:04:05.123456Z", "acquireTime": "2026-01-02T03:04:05+01:00"}});
        assert_eq!(schema_issues(&lease), vec![]);
    }

    #[test]
    fn objects_of_any_shape_and_alternatives() {
        // RawExtension holds anything; so does a CRD's `default` (JSON).
        for data in [json!(5), json!({"x": [1]}), json!("s"), json!([1])] {
            let rev = json!({"apiVersion": "apps/v1", "kind": "ControllerRevision",
                "metadata": {"name": "r"}, "revision": 1, "data": data});
            assert_eq!(schema_issues(&rev), vec![], "{data}");
        }
        let crd = |schema: Value| {
            json!({
                "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": "ws.example.com"},
                "spec": {"group": "example.com", "scope": "Namespaced",
                         "names": {"plural": "ws", "kind": "W"},
                         "versions": [{"name": "v1", "served": true, "storage": true,
                                       "schema": {"openAPIV3Schema": schema}}]}
            })
        };
        let good = crd(
            json!({"type": "object", "default": 3, "additionalProperties": true,
            "properties": {"a": {"type": "array", "items": [{"type": "string"}], "x-kubernetes-preserve-unknown-fields": true},
                           "b": {"additionalProperties": {"type": "string"}}}}),
        );
        assert_eq!(schema_issues(&good), vec![]);
        let bad = crd(json!({"additionalProperties": "no", "properties": {"a": {"typo": 1}}}));
        let s = "/spec/versions/0/schema/openAPIV3Schema";
        let got: Vec<_> = schema_issues(&bad)
            .into_iter()
            .map(|i| (i.0, i.1, i.2))
            .collect();
        assert_eq!(
            got,
            vec![
                ("kube-schema", format!("{s}/additionalProperties"),
                 "spec.versions.0.schema.openAPIV3Schema.additionalProperties: expected a mapping or a boolean (true or false), found the string \"no\"".into()),
                ("kube-unknown-field", format!("{s}/properties/a/typo"),
                 "unknown field `typo` in spec.versions.0.schema.openAPIV3Schema.properties.a".into()),
            ]
        );
    }

    #[test]
    fn keys_with_slashes_are_escaped_in_pointers() {
        let d = deployment(json!({"metadata": {"labels": {"app.kubernetes.io/name": 3}}}));
        let got: Vec<_> = schema_issues(&d).into_iter().map(|i| (i.1, i.2)).collect();
        assert_eq!(
            got,
            vec![(
                "/metadata/labels/app.kubernetes.io~1name".into(),
                "metadata.labels.app.kubernetes.io/name: expected a string, found the integer 3"
                    .into()
            )]
        );
    }
}
