//! Strict Kubernetes API schema checks, against the API schema of one pinned version.
//!
//! The source of truth is `k8s-openapi`, whose types are generated from the upstream
//! OpenAPI document of each Kubernetes release; we compile in one release
//! (`KUBERNETES_VERSION`) and use the schemas k8s-openapi carries in its schemars
//! impls, which keep the upstream `properties`, `required`, types and formats. Each
//! object is walked once beside its kind's schema (`schema_walk`): every unknown field
//! (the one `kubectl apply` silently drops and `kubeconform -strict` catches), every
//! value of the wrong type and every missing required field, not just the first.
//! What a schema node accepts is what k8s-openapi's typed deserialisers accept, so the
//! verdicts are the typed ones; the walk just never instantiates the deserialisers of
//! ~100 kinds (they were a third of the binary). No schema here is written by hand.
//!
//! Beyond the schema: names by each kind's rule (`check_metadata`), and the API
//! server's field validation that OpenAPI cannot express (`fields`).

use crate::pointer::{lookup, resolve_ref as deref};
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
    /// What to do about it, when there is something specific to say.
    pub help: Option<String>,
}

impl Issue {
    pub fn error(
        rule: &'static str,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Issue {
            rule,
            pointer: pointer.into(),
            message: message.into(),
            is_error: true,
            at_key: false,
            help: None,
        }
    }

    pub fn warning(
        rule: &'static str,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Issue {
            is_error: false,
            ..Issue::error(rule, pointer, message)
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Where an object lives: in a namespace, beside the namespaces, or only as a
/// subresource of another object (Scale, Eviction, TokenRequest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Namespaced,
    Cluster,
    Subresource,
}

type SchemaFn = fn() -> Value;

/// One built-in kind of the compiled-in release.
pub struct Kind {
    pub api_version: &'static str,
    pub group: &'static str,
    pub kind: &'static str,
    pub scope: Scope,
    schema: SchemaFn,
    schema_value: std::sync::OnceLock<Value>,
    compiled: std::sync::OnceLock<super::schema_walk::Compiled>,
}

fn scope_of<T: k8s_openapi::Resource>() -> Scope
where
    T::Scope: 'static,
{
    use std::any::TypeId;
    let scope = TypeId::of::<T::Scope>();
    if scope == TypeId::of::<k8s_openapi::ClusterResourceScope>() {
        Scope::Cluster
    } else if scope == TypeId::of::<k8s_openapi::NamespaceResourceScope>() {
        Scope::Namespaced
    } else {
        Scope::Subresource
    }
}

macro_rules! kinds {
    ($($t:ty),* $(,)?) => {
        vec![$(Kind {
            api_version: <$t as k8s_openapi::Resource>::API_VERSION,
            group: <$t as k8s_openapi::Resource>::GROUP,
            kind: <$t as k8s_openapi::Resource>::KIND,
            scope: scope_of::<$t>(),
            schema: schema_of::<$t> as SchemaFn,
            schema_value: std::sync::OnceLock::new(),
            compiled: std::sync::OnceLock::new(),
        }),*]
    };
}

/// Every resource type of the compiled-in release, as k8s-openapi generates them from
/// the upstream OpenAPI document: the list is the release's, not a selection of ours.
/// (Regenerate with `grep -rl 'impl crate::Resource for' src/v1_35` in k8s-openapi.)
fn all_kinds() -> Vec<Kind> {
    kinds![
    api::admissionregistration::v1::MutatingWebhookConfiguration,
    api::admissionregistration::v1::ValidatingAdmissionPolicy,
    api::admissionregistration::v1::ValidatingAdmissionPolicyBinding,
    api::admissionregistration::v1::ValidatingWebhookConfiguration,
    api::admissionregistration::v1alpha1::MutatingAdmissionPolicy,
    api::admissionregistration::v1alpha1::MutatingAdmissionPolicyBinding,
    api::admissionregistration::v1beta1::MutatingAdmissionPolicy,
    api::admissionregistration::v1beta1::MutatingAdmissionPolicyBinding,
    api::apiserverinternal::v1alpha1::StorageVersion,
    api::apps::v1::ControllerRevision,
    api::apps::v1::DaemonSet,
    api::apps::v1::Deployment,
    api::apps::v1::ReplicaSet,
    api::apps::v1::StatefulSet,
    api::authentication::v1::SelfSubjectReview,
    api::authentication::v1::TokenRequest,
    api::authentication::v1::TokenReview,
    api::authorization::v1::LocalSubjectAccessReview,
    api::authorization::v1::SelfSubjectAccessReview,
    api::authorization::v1::SelfSubjectRulesReview,
    api::authorization::v1::SubjectAccessReview,
    api::autoscaling::v1::HorizontalPodAutoscaler,
    api::autoscaling::v1::Scale,
    api::autoscaling::v2::HorizontalPodAutoscaler,
    api::batch::v1::CronJob,
    api::batch::v1::Job,
    api::certificates::v1::CertificateSigningRequest,
    api::certificates::v1alpha1::ClusterTrustBundle,
    api::certificates::v1beta1::ClusterTrustBundle,
    api::certificates::v1beta1::PodCertificateRequest,
    api::coordination::v1::Lease,
    api::coordination::v1alpha2::LeaseCandidate,
    api::coordination::v1beta1::LeaseCandidate,
    api::core::v1::Binding,
    api::core::v1::ComponentStatus,
    api::core::v1::ConfigMap,
    api::core::v1::Endpoints,
    api::core::v1::Event,
    api::core::v1::LimitRange,
    api::core::v1::Namespace,
    api::core::v1::Node,
    api::core::v1::PersistentVolume,
    api::core::v1::PersistentVolumeClaim,
    api::core::v1::Pod,
    api::core::v1::PodTemplate,
    api::core::v1::ReplicationController,
    api::core::v1::ResourceQuota,
    api::core::v1::Secret,
    api::core::v1::Service,
    api::core::v1::ServiceAccount,
    api::discovery::v1::EndpointSlice,
    api::events::v1::Event,
    api::flowcontrol::v1::FlowSchema,
    api::flowcontrol::v1::PriorityLevelConfiguration,
    api::networking::v1::Ingress,
    api::networking::v1::IngressClass,
    api::networking::v1::IPAddress,
    api::networking::v1::NetworkPolicy,
    api::networking::v1::ServiceCIDR,
    api::networking::v1beta1::IPAddress,
    api::networking::v1beta1::ServiceCIDR,
    api::node::v1::RuntimeClass,
    api::policy::v1::Eviction,
    api::policy::v1::PodDisruptionBudget,
    api::rbac::v1::ClusterRole,
    api::rbac::v1::ClusterRoleBinding,
    api::rbac::v1::Role,
    api::rbac::v1::RoleBinding,
    api::resource::v1::DeviceClass,
    api::resource::v1::ResourceClaim,
    api::resource::v1::ResourceClaimTemplate,
    api::resource::v1::ResourceSlice,
    api::resource::v1alpha3::DeviceTaintRule,
    api::resource::v1beta1::DeviceClass,
    api::resource::v1beta1::ResourceClaim,
    api::resource::v1beta1::ResourceClaimTemplate,
    api::resource::v1beta1::ResourceSlice,
    api::resource::v1beta2::DeviceClass,
    api::resource::v1beta2::ResourceClaim,
    api::resource::v1beta2::ResourceClaimTemplate,
    api::resource::v1beta2::ResourceSlice,
    api::scheduling::v1::PriorityClass,
    api::scheduling::v1alpha1::Workload,
    api::storage::v1::CSIDriver,
    api::storage::v1::CSINode,
    api::storage::v1::CSIStorageCapacity,
    api::storage::v1::StorageClass,
    api::storage::v1::VolumeAttachment,
    api::storage::v1::VolumeAttributesClass,
    api::storage::v1beta1::VolumeAttributesClass,
    api::storagemigration::v1beta1::StorageVersionMigration,
    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    k8s_openapi::apimachinery::pkg::apis::meta::v1::APIGroup,
    k8s_openapi::apimachinery::pkg::apis::meta::v1::APIGroupList,
    k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList,
    k8s_openapi::apimachinery::pkg::apis::meta::v1::APIVersions,
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Status,
    k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService,
    ]
}

struct Registry {
    kinds: Vec<Kind>,
    by_key: std::collections::HashMap<(&'static str, &'static str), usize>,
    groups: std::collections::HashSet<&'static str>,
}

/// API groups Kubernetes itself served in earlier releases and serves no more: their
/// objects are built-in kinds of a removed version (`kube-api-version`), never custom
/// resources.
const REMOVED_GROUPS: &[&str] = &["extensions", "settings.k8s.io", "auditregistration.k8s.io"];

fn registry() -> &'static Registry {
    static REGISTRY: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
    REGISTRY.get_or_init(|| {
        let kinds = all_kinds();
        let by_key = kinds
            .iter()
            .enumerate()
            .map(|(i, k)| ((k.api_version, k.kind), i))
            .collect();
        let groups = kinds
            .iter()
            .map(|k| k.group)
            .chain(REMOVED_GROUPS.iter().copied())
            .collect();
        Registry {
            kinds,
            by_key,
            groups,
        }
    })
}

/// The built-in kind of this release with this apiVersion and kind, if there is one.
pub fn builtin(api_version: &str, kind: &str) -> Option<&'static Kind> {
    let r = registry();
    r.by_key.get(&(api_version, kind)).map(|&i| &r.kinds[i])
}

/// Every built-in kind of the compiled-in release.
pub fn builtin_kinds() -> &'static [Kind] {
    &registry().kinds
}

/// The API group of an apiVersion (`apps/v1` -> `apps`, `v1` -> ``).
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("")
}

/// Whether Kubernetes itself serves (or served) this API group. Decided by the list
/// of groups of the compiled-in release, not by the name: `gateway.networking.k8s.io`
/// ends in `.k8s.io` and is a set of CustomResourceDefinitions.
pub fn is_builtin_group(group: &str) -> bool {
    registry().groups.contains(group)
}

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
        return vec![Issue::error(
            "kube-required-field",
            "",
            format!("the object has no `{missing}` (a string)"),
        )];
    }
    if let Some(k) = builtin(api_version, kind) {
        let mut issues = Vec::new();
        compiled(k).check(object, &mut issues);
        if lookup(cached_schema(k), "/properties/metadata").is_some() {
            issues.extend(check_metadata(object, k));
        }
        issues.extend(super::fields::check(object, k.kind));
        return issues;
    }
    if is_builtin_group(group_of(api_version)) {
        let served: Vec<&str> = builtin_kinds()
            .iter()
            .filter(|k| k.kind == kind)
            .map(|k| k.api_version)
            .collect();
        let message = if served.is_empty() {
            format!("Kubernetes {KUBERNETES_VERSION} has no kind `{kind}` in `{api_version}`")
        } else {
            format!(
                "Kubernetes {KUBERNETES_VERSION} does not serve `{kind}` as `{api_version}`; use `apiVersion: {}`",
                served.join("` or `")
            )
        };
        return vec![Issue::error("kube-api-version", "/apiVersion", message)];
    }
    vec![Issue::warning(
        "kube-no-schema",
        "/kind",
        format!("no schema for custom resource `{kind}` (`{api_version}`); it was not checked against an API schema"),
    )
    .help("pass its CustomResourceDefinition with `--crd DIR` to check it")]
}

/// Whether the API schema of a built-in kind has a string at `pointer` (array indices
/// and map keys followed through `items` and `additionalProperties`). False when the
/// kind or the path is unknown.
pub fn expects_string(api_version: &str, kind: &str, pointer: &str) -> bool {
    let Some(k) = builtin(api_version, kind) else {
        return false;
    };
    let root = cached_schema(k);
    let mut schema: &Value = root;
    for segment in crate::pointer::segments(pointer) {
        schema = deref(root, schema);
        let next = schema
            .get("properties")
            .and_then(|p| p.get(segment.as_ref()))
            .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()))
            .or_else(|| {
                schema
                    .get("items")
                    .filter(|_| segment.parse::<usize>().is_ok())
            });
        match next {
            Some(n) => schema = n,
            None => return false,
        }
    }
    let schema = deref(root, schema);
    match schema.get("type") {
        Some(Value::String(t)) => t == "string",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "string"),
        _ => false,
    }
}

fn schema_of<T: schemars::JsonSchema>() -> Value {
    schemars::SchemaGenerator::default()
        .into_root_schema_for::<T>()
        .to_value()
}

/// Generating a kind's schema takes a moment, so each is made once per process, when
/// the first object of that kind is checked, and compiled for the walk once.
fn cached_schema(k: &Kind) -> &Value {
    k.schema_value.get_or_init(|| (k.schema)())
}

fn compiled(k: &Kind) -> &super::schema_walk::Compiled {
    k.compiled
        .get_or_init(|| super::schema_walk::Compiled::new(cached_schema(k)))
}

// ---------------------------------------------------------------------------------
// Names: each kind is held to the rule its own validation in the API server passes to
// ValidateObjectMeta (k8s.io/kubernetes/pkg/apis/<group>/validation); a kind that
// passes none is held to the path-segment rule every create goes through.

/// The rule a built-in kind's `metadata.name` must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameRule {
    /// DNS-1123 subdomain: lower-case alphanumerics, `-` and `.`, at most 253.
    Subdomain,
    /// DNS-1123 label: lower-case alphanumerics and `-`, at most 63 (Namespace,
    /// StatefulSet, whose name goes into its pods' host names).
    Label,
    /// DNS-1035 label: a DNS-1123 label that starts with a letter (Service: its name is
    /// a DNS name and an environment variable prefix).
    Label1035,
    /// Any path segment: not `.` or `..`, no `/` or `%` (RBAC objects, whose names
    /// such as `system:controller:deployment-controller` ship with every cluster).
    PathSegment,
    /// A subdomain of at most 52 characters (CronJob: its Jobs append `-<time>`).
    CronJob,
    /// A subdomain of at most 63 characters unless the selector is manual (Job: the
    /// server copies the name into the `job-name` label of the Job and its pods).
    Job,
    /// `spec.names.plural` + "." + `spec.group` (CustomResourceDefinition).
    Crd,
    /// `<version>.<group>` (APIService).
    ApiService,
    /// An IP address in canonical form (IPAddress).
    Ip,
}

fn name_rule(k: &Kind) -> NameRule {
    match (k.group, k.kind) {
        ("", "Namespace") => NameRule::Label,
        ("", "Service") => NameRule::Label1035,
        ("apps", "StatefulSet") => NameRule::Label,
        ("batch", "CronJob") => NameRule::CronJob,
        ("batch", "Job") => NameRule::Job,
        ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
        ("policy", "PodDisruptionBudget") => NameRule::PathSegment,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => NameRule::Crd,
        ("apiregistration.k8s.io", "APIService") => NameRule::ApiService,
        ("networking.k8s.io", "IPAddress") => NameRule::Ip,
        _ => NameRule::Subdomain,
    }
}

/// Why `name` breaks `rule`, or None. `prefix` is for generateName: the server appends
/// five characters, so a trailing `-` is fine and the length leaves room for them.
fn name_problem(rule: NameRule, name: &str, prefix: bool, object: &Value) -> Option<String> {
    let checked: std::borrow::Cow<'_, str> = if prefix {
        format!("{}a", name.strip_suffix('-').unwrap_or(name)).into()
    } else {
        name.into()
    };
    let s = checked.as_ref();
    match rule {
        NameRule::Subdomain if !is_dns_subdomain(s) => Some(
            "must be a DNS-1123 subdomain: lower-case letters, digits, `-` and `.`, starting and ending with a letter or digit, at most 253 characters".into(),
        ),
        NameRule::Label if !is_dns_label(s) => Some(
            "must be a DNS-1123 label: lower-case letters, digits and `-`, starting and ending with a letter or digit, at most 63 characters".into(),
        ),
        NameRule::Label1035 if !is_dns1035_label(s) => Some(
            "must be a DNS-1035 label: lower-case letters, digits and `-`, starting with a letter and ending with a letter or digit, at most 63 characters".into(),
        ),
        NameRule::PathSegment if !is_path_segment(name) => {
            Some("may not be `.` or `..` and may not contain `/` or `%`".into())
        }
        NameRule::CronJob if !is_dns_subdomain(s) => Some(
            "must be a DNS-1123 subdomain: lower-case letters, digits, `-` and `.`, starting and ending with a letter or digit".into(),
        ),
        NameRule::CronJob if s.len() > 52 => Some(
            "must be no more than 52 characters: the Jobs it creates append an 11-character suffix and must still fit a label".into(),
        ),
        NameRule::Job if !is_dns_subdomain(s) => Some(
            "must be a DNS-1123 subdomain: lower-case letters, digits, `-` and `.`, starting and ending with a letter or digit".into(),
        ),
        // A generated name is cut to fit 63 characters, and a manual selector means the
        // server adds no labels.
        NameRule::Job
            if !prefix
                && s.len() > 63
                && lookup(object, "/spec/manualSelector").and_then(Value::as_bool) != Some(true) =>
        {
            Some("must be no more than 63 characters: the API server copies a Job's name into the job-name label of the Job and its pods, and a label value has at most 63".into())
        }
        NameRule::Crd => {
            let field = |p: &str| lookup(object, p).and_then(Value::as_str).unwrap_or("");
            let expected = format!("{}.{}", field("/spec/names/plural"), field("/spec/group"));
            (name != expected).then(|| format!("must be spec.names.plural + \".\" + spec.group: `{expected}`"))
        }
        NameRule::ApiService => {
            let field = |p: &str| lookup(object, p).and_then(Value::as_str).unwrap_or("");
            let expected = format!("{}.{}", field("/spec/version"), field("/spec/group"));
            (name != expected).then(|| format!("must be spec.version + \".\" + spec.group: `{expected}`"))
        }
        NameRule::Ip => match name.parse::<std::net::IpAddr>() {
            Ok(ip) if ip.to_string() == name => None,
            Ok(ip) => Some(format!("must be an IP address in canonical form: `{ip}`")),
            Err(_) => Some("must be an IP address".into()),
        },
        _ => None,
    }
}

/// What the API server would refuse in `metadata` that the types cannot say: the
/// name (by the kind's rule, or a generateName), labels and annotations.
fn check_metadata(object: &Value, k: &Kind) -> Vec<Issue> {
    check_name(object, k.kind, name_rule(k))
}

/// The metadata of a custom resource, as the API server checks it whatever the
/// definition's schema says: the name (or generateName) a DNS-1123 subdomain, and the
/// label and annotation syntax every object is held to.
pub(crate) fn custom_resource_metadata(object: &Value, kind: &str) -> Vec<Issue> {
    let mut issues = check_name(object, kind, NameRule::Subdomain);
    issues.extend(super::fields::object_metadata(object));
    issues
}

fn check_name(object: &Value, kind: &str, rule: NameRule) -> Vec<Issue> {
    let mut issues = Vec::new();
    let name = lookup(object, "/metadata/name");
    let generate = lookup(object, "/metadata/generateName");
    match (name, generate) {
        (Some(Value::String(name)), _) if !name.is_empty() => {
            if let Some(why) = name_problem(rule, name, false, object) {
                issues.push(Issue::error(
                    "kube-name",
                    "/metadata/name",
                    format!("the {kind} name {name:?} is not valid: it {why}"),
                ));
            }
        }
        (_, Some(Value::String(prefix))) if !prefix.is_empty() => {
            // `kubectl create` sends a generateName; `kubectl apply` refuses it, but
            // Argo CD hooks and Jobs made by other tools use it as meant.
            if let Some(why) = name_problem(rule, prefix, true, object) {
                issues.push(Issue::error(
                    "kube-name",
                    "/metadata/generateName",
                    format!("the {kind} generateName {prefix:?} is not valid: with the generated suffix the name {why}"),
                ));
            }
        }
        _ => issues.push(
            Issue::error(
                "kube-required-field",
                if object.get("metadata").is_some() { "/metadata" } else { "" },
                "metadata.name is required (or metadata.generateName, for objects made with `kubectl create`)",
            ),
        ),
    }
    issues
}

pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

pub(crate) fn is_dns1035_label(s: &str) -> bool {
    is_dns_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn is_path_segment(s: &str) -> bool {
    s != "." && s != ".." && !s.contains(['/', '%'])
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
