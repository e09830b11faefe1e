//! Strict Kubernetes API schema checks, against the types of one pinned version.
//!
//! The source of truth is `k8s-openapi`, whose types are generated from the upstream
//! OpenAPI document of each Kubernetes release; we compile in one release
//! (`KUBERNETES_VERSION`). Each object is deserialised into its typed struct through two
//! wrappers: `serde_ignored` reports every field the type does not have (the "unknown
//! field" that `kubectl apply` silently drops and `kubeconform -strict` catches), and
//! `serde_path_to_error` names the path of a wrong type. k8s-openapi's deserialisers
//! default a missing required field instead of failing, so required fields are checked
//! against the `required` lists of the same upstream document, which k8s-openapi
//! carries in its schemars impls. No schema here is written by hand.

use serde::de::DeserializeOwned;
use serde_json::Value;

use k8s_openapi::api;

/// The Kubernetes minor version compiled in (k8s-openapi feature `v1_35`).
pub const KUBERNETES_VERSION: &str = "1.35";

/// One problem with one object, at a JSON pointer into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub rule: &'static str,
    pub pointer: String,
    pub message: String,
    /// False for a warning (an object we have no schema for).
    pub is_error: bool,
    /// Whether `pointer` names a key (unknown field) rather than a value.
    pub at_key: bool,
}

type CheckFn = fn(&Value) -> Vec<Issue>;
type SchemaFn = fn() -> Value;

macro_rules! kinds {
    ($($t:ty),* $(,)?) => {
        &[$((
            <$t as k8s_openapi::Resource>::API_VERSION,
            <$t as k8s_openapi::Resource>::KIND,
            check_as::<$t> as CheckFn,
            schema_of::<$t> as SchemaFn,
        )),*]
    };
}

/// Every built-in kind we check, by (apiVersion, kind).
static KINDS: &[(&str, &str, CheckFn, SchemaFn)] = kinds![
    api::core::v1::ConfigMap,
    api::core::v1::Secret,
    api::core::v1::Service,
    api::core::v1::ServiceAccount,
    api::core::v1::Pod,
    api::core::v1::Namespace,
    api::core::v1::PersistentVolumeClaim,
    api::core::v1::PersistentVolume,
    api::core::v1::LimitRange,
    api::core::v1::ResourceQuota,
    api::core::v1::ReplicationController,
    api::core::v1::Endpoints,
    api::apps::v1::Deployment,
    api::apps::v1::StatefulSet,
    api::apps::v1::DaemonSet,
    api::apps::v1::ReplicaSet,
    api::batch::v1::Job,
    api::batch::v1::CronJob,
    api::networking::v1::Ingress,
    api::networking::v1::IngressClass,
    api::networking::v1::NetworkPolicy,
    api::policy::v1::PodDisruptionBudget,
    api::rbac::v1::Role,
    api::rbac::v1::RoleBinding,
    api::rbac::v1::ClusterRole,
    api::rbac::v1::ClusterRoleBinding,
    api::autoscaling::v1::HorizontalPodAutoscaler,
    api::autoscaling::v2::HorizontalPodAutoscaler,
    api::scheduling::v1::PriorityClass,
    api::storage::v1::StorageClass,
    api::discovery::v1::EndpointSlice,
    api::coordination::v1::Lease,
    api::admissionregistration::v1::ValidatingWebhookConfiguration,
    api::admissionregistration::v1::MutatingWebhookConfiguration,
    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
];

/// Checks one object. Objects of API groups that Kubernetes itself serves must be a
/// kind and version this release serves; objects of other groups (custom resources)
/// get a warning that they were not checked, never a silent pass.
pub fn check(object: &Value) -> Vec<Issue> {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    if api_version.is_empty() || kind.is_empty() {
        let missing = if api_version.is_empty() {
            "apiVersion"
        } else {
            "kind"
        };
        return vec![Issue {
            rule: "kube-schema",
            pointer: String::new(),
            message: format!("the object has no `{missing}`"),
            is_error: true,
            at_key: false,
        }];
    }
    if let Some((_, _, check, schema)) = KINDS
        .iter()
        .find(|(v, k, _, _)| *v == api_version && *k == kind)
    {
        let mut issues = check(object);
        let root = cached_schema(api_version, kind, *schema);
        missing_required(object, &root, &root, &mut String::new(), &mut issues);
        issues.extend(check_metadata(object));
        return issues;
    }
    let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    let builtin_group = group.is_empty() || !group.contains('.') || group.ends_with(".k8s.io");
    if builtin_group {
        let served: Vec<&str> = KINDS
            .iter()
            .filter(|(_, k, _, _)| *k == kind)
            .map(|(v, _, _, _)| *v)
            .collect();
        let message = if served.is_empty() {
            format!("Kubernetes {KUBERNETES_VERSION} has no kind `{kind}` in `{api_version}`")
        } else {
            format!(
                "Kubernetes {KUBERNETES_VERSION} does not serve `{kind}` as `{api_version}`; use `apiVersion: {}`",
                served.join("` or `")
            )
        };
        return vec![Issue {
            rule: "kube-api-version",
            pointer: "/apiVersion".into(),
            message,
            is_error: true,
            at_key: false,
        }];
    }
    vec![Issue {
        rule: "kube-no-schema",
        pointer: "/kind".into(),
        message: format!("no schema for custom resource `{kind}` (`{api_version}`); it was not checked against an API schema"),
        is_error: false,
        at_key: false,
    }]
}

fn check_as<T: DeserializeOwned>(object: &Value) -> Vec<Issue> {
    let mut issues = Vec::new();
    let mut track = serde_path_to_error::Track::new();
    let result: Result<T, _> = {
        let de = serde_path_to_error::Deserializer::new(object, &mut track);
        serde_ignored::deserialize(de, |path| {
            let mut segments = Vec::new();
            collect_ignored(&path, &mut segments);
            let pointer: String = segments.iter().map(|s| format!("/{s}")).collect();
            let field = segments.last().cloned().unwrap_or_default();
            issues.push(Issue {
                rule: "kube-unknown-field",
                pointer,
                message: format!(
                    "unknown field `{}`",
                    field.replace("~1", "/").replace("~0", "~")
                ),
                is_error: true,
                at_key: true,
            });
        })
    };
    if let Err(e) = result {
        let path = track.path();
        let mut pointer = String::new();
        for seg in path.iter() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => {
                    pointer.push_str(&format!("/{index}"))
                }
                serde_path_to_error::Segment::Map { key } => {
                    pointer.push('/');
                    pointer.push_str(&crate::yaml::escape_pointer(key));
                }
                _ => {}
            }
        }
        let message = e.to_string();
        let rule = if message.starts_with("missing field") {
            "kube-required-field"
        } else {
            "kube-schema"
        };
        let where_ = crate::values::pointer_to_dotted(&pointer);
        issues.push(Issue {
            rule,
            message: if where_.is_empty() {
                message
            } else {
                format!("{where_}: {message}")
            },
            pointer,
            is_error: true,
            at_key: false,
        });
    }
    issues
}

fn schema_of<T: schemars::JsonSchema>() -> Value {
    schemars::SchemaGenerator::default()
        .into_root_schema_for::<T>()
        .to_value()
}

/// Generating a kind's schema takes a moment, so each is made once per process, when
/// the first object of that kind is checked.
fn cached_schema(api_version: &str, kind: &str, make: SchemaFn) -> std::sync::Arc<Value> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Value>>>> = OnceLock::new();
    let key = format!("{api_version}/{kind}");
    let cache = CACHE.get_or_init(Default::default);
    if let Some(found) = cache.lock().expect("schema cache").get(&key) {
        return found.clone();
    }
    let made = Arc::new(make());
    cache
        .lock()
        .expect("schema cache")
        .insert(key, made.clone());
    made
}

fn deref<'a>(root: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..32 {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => match r.strip_prefix('#').and_then(|p| root.pointer(p)) {
                Some(next) => schema = next,
                None => break,
            },
            None => break,
        }
    }
    schema
}

/// Walks an object with its schema and reports every required field that is absent.
fn missing_required(
    value: &Value,
    schema: &Value,
    root: &Value,
    pointer: &mut String,
    issues: &mut Vec<Issue>,
) {
    let schema = deref(root, schema);
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(required)) = schema.get("required") {
                for name in required.iter().filter_map(Value::as_str) {
                    if !map.contains_key(name) {
                        let at = crate::values::pointer_to_dotted(pointer);
                        let full = if at.is_empty() {
                            name.to_string()
                        } else {
                            format!("{at}.{name}")
                        };
                        issues.push(Issue {
                            rule: "kube-required-field",
                            pointer: pointer.clone(),
                            message: format!("missing required field `{full}`"),
                            is_error: true,
                            at_key: false,
                        });
                    }
                }
            }
            let props = schema.get("properties");
            let extra = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, v) in map {
                let Some(sub) = props.and_then(|p| p.get(k)).or(extra) else {
                    continue;
                };
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&crate::yaml::escape_pointer(k));
                missing_required(v, sub, root, pointer, issues);
                pointer.truncate(len);
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    let len = pointer.len();
                    pointer.push_str(&format!("/{i}"));
                    missing_required(item, sub, root, pointer, issues);
                    pointer.truncate(len);
                }
            }
        }
        _ => {}
    }
}

fn collect_ignored(path: &serde_ignored::Path<'_>, out: &mut Vec<String>) {
    use serde_ignored::Path;
    match path {
        Path::Root => {}
        Path::Seq { parent, index } => {
            collect_ignored(parent, out);
            out.push(index.to_string());
        }
        Path::Map { parent, key } => {
            collect_ignored(parent, out);
            out.push(crate::yaml::escape_pointer(key).into_owned());
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => collect_ignored(parent, out),
    }
}

/// What the API server would refuse that the types cannot say: names and labels.
fn check_metadata(object: &Value) -> Vec<Issue> {
    let mut issues = Vec::new();
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    match object.pointer("/metadata/name").and_then(Value::as_str) {
        None => issues.push(Issue {
            rule: "kube-required-field",
            pointer: "/metadata".into(),
            message: "metadata.name is required".into(),
            is_error: true,
            at_key: false,
        }),
        Some(name) if !is_dns_subdomain(name) => issues.push(Issue {
            rule: "kube-schema",
            pointer: "/metadata/name".into(),
            message: format!("metadata.name {name:?} is not a valid DNS-1123 subdomain"),
            is_error: true,
            at_key: false,
        }),
        Some(name) if matches!(kind, "Service" | "Namespace") && !is_dns_label(name) => issues
            .push(Issue {
                rule: "kube-schema",
                pointer: "/metadata/name".into(),
                message: format!(
                    "a {kind} name must be a DNS-1123 label of at most 63 characters, not {name:?}"
                ),
                is_error: true,
                at_key: false,
            }),
        Some(_) => {}
    }
    for labels_at in ["/metadata/labels", "/spec/template/metadata/labels"] {
        if let Some(labels) = object.pointer(labels_at).and_then(Value::as_object) {
            for (k, v) in labels {
                let value = v.as_str().unwrap_or("");
                if !is_label_key(k) || !is_label_value(value) {
                    issues.push(Issue {
                        rule: "kube-schema",
                        pointer: format!("{labels_at}/{}", crate::yaml::escape_pointer(k)),
                        message: format!("label {k}={value:?} is not a valid label (keys: [prefix/]name of at most 63 characters; values: at most 63 alphanumerics, `-`, `_`, `.`)"),
                        is_error: true,
                        at_key: false,
                    });
                }
            }
        }
    }
    issues
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn is_label_value(s: &str) -> bool {
    s.len() <= 63
        && (s.is_empty()
            || (s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                && s.as_bytes()[0].is_ascii_alphanumeric()
                && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()))
}

fn is_label_key(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    prefix.is_none_or(is_dns_subdomain) && !name.is_empty() && is_label_value(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(container: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "x"},
            "spec": {"selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [container]}}}
        })
    }

    #[test]
    fn a_valid_deployment_passes() {
        assert_eq!(
            check(&deployment(json!({"name": "c", "image": "i:1"}))),
            vec![]
        );
    }

    #[test]
    fn unknown_fields_are_found_with_their_path() {
        let issues = check(&deployment(
            json!({"name": "c", "image": "i:1", "imagePullPolicyy": "Always"}),
        ));
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].rule, "kube-unknown-field");
        assert_eq!(
            issues[0].pointer,
            "/spec/template/spec/containers/0/imagePullPolicyy"
        );
    }

    #[test]
    fn wrong_types_and_missing_fields_are_found() {
        let issues = check(&deployment(
            json!({"name": "c", "ports": [{"containerPort": "http"}]}),
        ));
        assert!(
            issues
                .iter()
                .any(|i| i.pointer.ends_with("/ports/0/containerPort")),
            "{issues:?}"
        );
        let issues = check(&deployment(json!({"image": "i:1"})));
        assert!(
            issues.iter().any(|i| i.rule == "kube-required-field"),
            "{issues:?}"
        );
    }

    #[test]
    fn removed_api_versions_and_custom_resources() {
        let old = json!({"apiVersion": "extensions/v1beta1", "kind": "Deployment", "metadata": {"name": "x"}});
        let issues = check(&old);
        assert_eq!(issues[0].rule, "kube-api-version");
        assert!(
            issues[0].message.contains("apps/v1"),
            "{}",
            issues[0].message
        );
        let cr = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "x"}});
        assert!(!check(&cr)[0].is_error);
    }
}
