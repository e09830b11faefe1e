//! What the API server refuses that its OpenAPI schema cannot say: the checks of the
//! API's own validation package (k8s.io/kubernetes/pkg/apis/*/validation), for the
//! fields teams write most. The schema says `ports[].name` is a string; the server
//! says it is an IANA service name of at most 15 characters. Each check is a named rule
//! (docs/rules.md) so a finding says which promise of the server it anticipates.
//!
//! Every function here takes the object as JSON of any shape: a value of the wrong type
//! was already reported by the schema walk, so it is skipped here, never a panic.

use serde_json::{Map, Value};

use super::kube::{is_dns_label, is_dns_subdomain, Issue};
use crate::pointer::{escape as escape_pointer, lookup};

/// Where each workload kind keeps its pod template (the same table as policies/lib.rego).
pub fn pod_template_path(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => "/spec/template",
        "CronJob" => "/spec/jobTemplate/spec/template",
        "PodTemplate" => "/template",
        _ => return None,
    })
}

/// Runs every field check that applies to a built-in `kind`.
pub fn check(object: &Value, kind: &str) -> Vec<Issue> {
    let mut out = Vec::new();
    object_meta(object, "/metadata", &mut out);
    if let Some(template) = pod_template_path(kind) {
        object_meta(object, &format!("{template}/metadata"), &mut out);
        if kind == "CronJob" {
            object_meta(object, "/spec/jobTemplate/metadata", &mut out);
        }
        let restart: &[&str] = match kind {
            "Job" | "CronJob" => &["OnFailure", "Never"],
            "PodTemplate" => &["Always", "OnFailure", "Never"],
            _ => &["Always"],
        };
        pod_spec(object, &format!("{template}/spec"), restart, &mut out);
        workload_selector(object, kind, template, &mut out);
    }
    match kind {
        "Pod" => pod_spec(object, "/spec", &["Always", "OnFailure", "Never"], &mut out),
        "Deployment" => {
            for field in [
                "replicas",
                "minReadySeconds",
                "revisionHistoryLimit",
                "progressDeadlineSeconds",
            ] {
                at_least(object, &format!("/spec/{field}"), 0, &mut out);
            }
            deployment_rollout(object, &mut out);
        }
        "ReplicaSet" | "ReplicationController" => {
            at_least(object, "/spec/replicas", 0, &mut out);
            at_least(object, "/spec/minReadySeconds", 0, &mut out);
        }
        "DaemonSet" => daemon_set_rollout(object, &mut out),
        "Job" => job_spec(object, "/spec", &mut out),
        "HorizontalPodAutoscaler" => autoscaler(object, &mut out),
        "ConfigMap" | "Secret" => config_keys(object, kind, &mut out),
        "StatefulSet" => {
            stateful_set_rollout(object, &mut out);
            if let Some(Value::Array(claims)) = lookup(object, "/spec/volumeClaimTemplates") {
                for i in 0..claims.len() {
                    let at = format!("/spec/volumeClaimTemplates/{i}");
                    object_meta(object, &format!("{at}/metadata"), &mut out);
                    claim_spec(object, &format!("{at}/spec"), &mut out);
                }
            }
        }
        "Service" => service(object, &mut out),
        "Ingress" => ingress(object, &mut out),
        "NetworkPolicy" => network_policy(object, &mut out),
        "PodDisruptionBudget" => {
            selector(object, "/spec/selector", &mut out);
            disruption_budget(object, &mut out);
        }
        "PersistentVolumeClaim" => claim_spec(object, "/spec", &mut out),
        "PersistentVolume" => access_modes(object, "/spec/accessModes", &mut out),
        "ResourceQuota" => quantity_map(object, "/spec/hard", &mut out),
        "LimitRange" => {
            if let Some(Value::Array(limits)) = lookup(object, "/spec/limits") {
                for i in 0..limits.len() {
                    for field in [
                        "max",
                        "min",
                        "default",
                        "defaultRequest",
                        "maxLimitRequestRatio",
                    ] {
                        quantity_map(object, &format!("/spec/limits/{i}/{field}"), &mut out);
                    }
                }
            }
        }
        "CronJob" => {
            one_of(
                object,
                "/spec/concurrencyPolicy",
                &["Allow", "Forbid", "Replace"],
                &mut out,
            );
            if let Some(schedule) = str_at(object, "/spec/schedule") {
                if let Some(why) = super::cron::schedule_error(schedule) {
                    out.push(
                        Issue::error(
                            "kube-cron-schedule",
                            "/spec/schedule",
                            format!("the schedule {schedule:?} is refused: {why}"),
                        )
                        .help("five fields (minute 0-59, hour 0-23, day of month 1-31, month 1-12, day of week 0-6), or @hourly, @daily, @weekly, @monthly, @yearly, @every <duration>"),
                    );
                }
            }
            for field in [
                "startingDeadlineSeconds",
                "successfulJobsHistoryLimit",
                "failedJobsHistoryLimit",
            ] {
                at_least(object, &format!("/spec/{field}"), 0, &mut out);
            }
            job_spec(object, "/spec/jobTemplate/spec", &mut out);
        }
        _ => {}
    }
    out
}

fn str_at<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    lookup(object, pointer).and_then(Value::as_str)
}

fn map_at<'a>(object: &'a Value, pointer: &str) -> Option<&'a Map<String, Value>> {
    lookup(object, pointer).and_then(Value::as_object)
}

fn list_at<'a>(object: &'a Value, pointer: &str) -> &'a [Value] {
    lookup(object, pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn child(pointer: &str, key: &str) -> String {
    format!("{pointer}/{}", escape_pointer(key))
}

/// `kube-enum`: a field that takes one of a fixed set of values. The API is
/// case-sensitive: `protocol: tcp` and `imagePullPolicy: always` are refused.
fn one_of(object: &Value, pointer: &str, allowed: &[&str], out: &mut Vec<Issue>) {
    let Some(value) = str_at(object, pointer) else {
        return;
    };
    if allowed.contains(&value) {
        return;
    }
    // A list item is named by its list: `accessModes[1]`, not `1`.
    let mut segments = pointer.rsplit('/');
    let last = segments.next().unwrap_or(pointer);
    let field = match segments.next() {
        Some(list) if last.bytes().all(|b| b.is_ascii_digit()) => format!("{list}[{last}]"),
        _ => last.to_string(),
    };
    let mut issue = Issue::error(
        "kube-enum",
        pointer,
        format!(
            "{field}: {value:?} is not one of the supported values: {}",
            allowed.join(", ")
        ),
    );
    if let Some(fix) = allowed.iter().find(|a| a.eq_ignore_ascii_case(value)) {
        issue = issue.help(format!("the API is case-sensitive: write `{fix}`"));
    }
    out.push(issue);
}

// ---------------------------------------------------------------------------------
// Labels, annotations, selectors.

/// A qualified name: `[prefix/]name`, the prefix a DNS subdomain, the name at most 63
/// alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric.
pub fn is_qualified_name(k: &str) -> bool {
    let (prefix, name) = match k.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    prefix.is_none_or(is_dns_subdomain) && !name.is_empty() && is_label_value(name)
}

/// A label value: empty, or at most 63 alphanumerics, `-`, `_`, `.`, starting and
/// ending alphanumeric.
pub fn is_label_value(s: &str) -> bool {
    s.len() <= 63
        && (s.is_empty()
            || (s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                && s.as_bytes()[0].is_ascii_alphanumeric()
                && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()))
}

const KEY_SYNTAX: &str = "keys are [prefix/]name: an optional DNS subdomain prefix, and a name of at most 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit";

fn labels(object: &Value, pointer: &str, rule: &'static str, out: &mut Vec<Issue>) {
    let Some(map) = map_at(object, pointer) else {
        return;
    };
    for (k, v) in map {
        let at = child(pointer, k);
        if !is_qualified_name(k) {
            out.push(Issue {
                at_key: true,
                ..Issue::error(
                    rule,
                    at.clone(),
                    format!("the label key {k:?} is not valid: {KEY_SYNTAX}"),
                )
            });
        }
        if let Some(value) = v.as_str() {
            if !is_label_value(value) {
                out.push(Issue::error(
                    rule,
                    at,
                    format!("the value {value:?} of label {k:?} is not valid: label values are empty or at most 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit"),
                ));
            }
        }
    }
}

/// The annotations of all objects together may not exceed 256 KiB (keys and values).
const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// The label and annotation syntax of an object's own metadata, for kinds this module
/// knows nothing else about (custom resources).
pub fn object_metadata(object: &Value) -> Vec<Issue> {
    let mut out = Vec::new();
    object_meta(object, "/metadata", &mut out);
    out
}

fn object_meta(object: &Value, pointer: &str, out: &mut Vec<Issue>) {
    labels(object, &format!("{pointer}/labels"), "kube-label", out);
    let at = format!("{pointer}/annotations");
    let Some(map) = map_at(object, &at) else {
        return;
    };
    let mut total = 0;
    for (k, v) in map {
        total += k.len() + v.as_str().map_or(0, str::len);
        // Annotation prefixes must be lower case, like label prefixes.
        if !is_qualified_name(k) {
            out.push(Issue {
                at_key: true,
                ..Issue::error(
                    "kube-annotation",
                    child(&at, k),
                    format!("the annotation key {k:?} is not valid: {KEY_SYNTAX}"),
                )
            });
        }
    }
    if total > MAX_ANNOTATIONS_BYTES {
        out.push(Issue::error(
            "kube-annotation",
            at,
            format!("the annotations take {total} bytes; the API server allows at most {MAX_ANNOTATIONS_BYTES} (256 KiB)"),
        ));
    }
}

/// `kube-selector`: a LabelSelector's matchLabels and matchExpressions.
fn selector(object: &Value, pointer: &str, out: &mut Vec<Issue>) {
    labels(
        object,
        &format!("{pointer}/matchLabels"),
        "kube-selector",
        out,
    );
    let exprs = format!("{pointer}/matchExpressions");
    for (i, e) in list_at(object, &exprs).iter().enumerate() {
        let at = format!("{exprs}/{i}");
        if let Some(key) = e.get("key").and_then(Value::as_str) {
            if !is_qualified_name(key) {
                out.push(Issue::error(
                    "kube-selector",
                    format!("{at}/key"),
                    format!("the selector key {key:?} is not valid: {KEY_SYNTAX}"),
                ));
            }
        }
        let values = e
            .get("values")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        match e.get("operator").and_then(Value::as_str) {
            Some("In" | "NotIn") if values == 0 => out.push(Issue::error(
                "kube-selector",
                format!("{at}/operator"),
                "the operators In and NotIn need a non-empty `values` list",
            )),
            Some("Exists" | "DoesNotExist") if values > 0 => out.push(Issue::error(
                "kube-selector",
                format!("{at}/values"),
                "the operators Exists and DoesNotExist take no `values`",
            )),
            Some("In" | "NotIn" | "Exists" | "DoesNotExist") | None => {}
            Some(_) => one_of(
                object,
                &format!("{at}/operator"),
                &["In", "NotIn", "Exists", "DoesNotExist"],
                out,
            ),
        }
    }
}

/// Whether a selector (matchLabels and matchExpressions) selects `labels`.
pub fn selects(selector: &Value, labels: &Map<String, Value>) -> bool {
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    let match_labels = selector.get("matchLabels").and_then(Value::as_object);
    let labels_ok = match_labels
        .into_iter()
        .flatten()
        .all(|(k, v)| label(k).is_some() && label(k) == v.as_str());
    let exprs = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    labels_ok
        && exprs.iter().all(|e| {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match e.get("operator").and_then(Value::as_str) {
                Some("In") => label(key).is_some_and(|v| values.contains(&v)),
                Some("NotIn") => label(key).is_none_or(|v| !values.contains(&v)),
                Some("Exists") => label(key).is_some(),
                Some("DoesNotExist") => label(key).is_none(),
                _ => false,
            }
        })
}

/// apps/v1 and batch/v1 workloads: the selector must not be empty and must select the
/// pod template's labels, or the controller would own pods it did not make.
fn workload_selector(object: &Value, kind: &str, template: &str, out: &mut Vec<Issue>) {
    if !matches!(
        kind,
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job"
    ) {
        return;
    }
    let Some(sel) = lookup(object, "/spec/selector").filter(|s| s.is_object()) else {
        return;
    };
    selector(object, "/spec/selector", out);
    let empty = map_at(object, "/spec/selector/matchLabels").is_none_or(Map::is_empty)
        && list_at(object, "/spec/selector/matchExpressions").is_empty();
    if empty {
        if kind != "Job" {
            out.push(Issue::error(
                "kube-selector",
                "/spec/selector",
                format!("a {kind}'s selector may not be empty: select the pod template's labels"),
            ));
        }
        return;
    }
    let empty_map = Map::new();
    let labels = map_at(object, &format!("{template}/metadata/labels")).unwrap_or(&empty_map);
    if !selects(sel, labels) {
        out.push(Issue::error(
            "kube-selector",
            "/spec/selector",
            format!("the selector does not match the labels of the {kind}'s pod template ({template}/metadata/labels): the API server refuses it"),
        ));
    }
}

// ---------------------------------------------------------------------------------
// Pods.

/// An IANA service name, the rule for container port names: at most 15 lower-case
/// letters, digits and `-`, at least one letter, no `-` at either end or twice in a row.
pub fn is_iana_svc_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

fn port_number(object: &Value, pointer: &str, min: i64, out: &mut Vec<Issue>) {
    if let Some(n) = lookup(object, pointer).and_then(Value::as_i64) {
        if !(min..=65535).contains(&n) {
            let field = pointer.rsplit('/').next().unwrap_or(pointer);
            out.push(Issue::error(
                "kube-port",
                pointer,
                format!(
                    "{field} {n} is not a valid port number: it must be between {min} and 65535"
                ),
            ));
        }
    }
}

fn port_name(object: &Value, pointer: &str, out: &mut Vec<Issue>) {
    if let Some(name) = str_at(object, pointer) {
        if !is_iana_svc_name(name) {
            let why = if name.len() > 15 {
                format!("it has {} characters; at most 15 are allowed", name.len())
            } else {
                "it must be lower-case letters, digits and `-`, with at least one letter, no `-` at either end and no `--`".to_string()
            };
            out.push(Issue::error(
                "kube-port-name",
                pointer,
                format!("the port name {name:?} is not a valid IANA service name: {why}"),
            ));
        }
    }
}

/// A `targetPort` or probe `port`: a number 1-65535 or an IANA service name.
fn int_or_port_name(object: &Value, pointer: &str, out: &mut Vec<Issue>) {
    match lookup(object, pointer) {
        Some(Value::Number(_)) => port_number(object, pointer, 1, out),
        Some(Value::String(s)) if s.parse::<i64>().is_ok() => {}
        Some(Value::String(_)) => port_name(object, pointer, out),
        _ => {}
    }
}

fn pod_spec(object: &Value, spec: &str, restart: &[&str], out: &mut Vec<Issue>) {
    if map_at(object, spec).is_none() {
        return;
    }
    one_of(object, &format!("{spec}/restartPolicy"), restart, out);
    one_of(
        object,
        &format!("{spec}/dnsPolicy"),
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        out,
    );
    security_context(object, &format!("{spec}/securityContext"), out);
    scheduling(object, spec, out);
    let host_network =
        lookup(object, &format!("{spec}/hostNetwork")).and_then(Value::as_bool) == Some(true);
    let mut volumes = std::collections::HashSet::new();
    let vol_at = format!("{spec}/volumes");
    for (i, v) in list_at(object, &vol_at).iter().enumerate() {
        let Some(name) = v.get("name").and_then(Value::as_str) else {
            continue;
        };
        let at = format!("{vol_at}/{i}/name");
        if !is_dns_label(name) {
            out.push(Issue::error(
                "kube-name",
                at.clone(),
                format!("the volume name {name:?} is not a valid DNS-1123 label"),
            ));
        }
        if !volumes.insert(name) {
            out.push(Issue::error(
                "kube-name",
                at,
                format!("the volume name {name:?} is used twice in the pod"),
            ));
        }
        quantity(object, &format!("{vol_at}/{i}/emptyDir/sizeLimit"), out);
    }
    if lookup(object, &format!("{spec}/containers"))
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        out.push(Issue::error(
            "kube-required-field",
            format!("{spec}/containers"),
            "a pod needs at least one container",
        ));
    }
    let mut names = std::collections::HashSet::new();
    for field in ["initContainers", "containers", "ephemeralContainers"] {
        let list_ptr = format!("{spec}/{field}");
        for (i, c) in list_at(object, &list_ptr).iter().enumerate() {
            if !c.is_object() {
                continue;
            }
            let at = format!("{list_ptr}/{i}");
            if let Some(name) = c.get("name").and_then(Value::as_str) {
                if !is_dns_label(name) {
                    out.push(Issue::error(
                        "kube-name",
                        format!("{at}/name"),
                        format!("the container name {name:?} is not a valid DNS-1123 label"),
                    ));
                } else if !names.insert(name) {
                    out.push(Issue::error(
                        "kube-name",
                        format!("{at}/name"),
                        format!("the container name {name:?} is used twice in the pod"),
                    ));
                }
            }
            container(object, &at, field, &volumes, host_network, out);
        }
    }
}

fn container(
    object: &Value,
    at: &str,
    field: &str,
    volumes: &std::collections::HashSet<&str>,
    host_network: bool,
    out: &mut Vec<Issue>,
) {
    security_context(object, &format!("{at}/securityContext"), out);
    one_of(
        object,
        &format!("{at}/imagePullPolicy"),
        &["Always", "Never", "IfNotPresent"],
        out,
    );
    one_of(
        object,
        &format!("{at}/terminationMessagePolicy"),
        &["File", "FallbackToLogsOnError"],
        out,
    );
    let mut port_names = std::collections::HashSet::new();
    let ports = format!("{at}/ports");
    for (i, p) in list_at(object, &ports).iter().enumerate() {
        let pat = format!("{ports}/{i}");
        port_number(object, &format!("{pat}/containerPort"), 1, out);
        port_number(object, &format!("{pat}/hostPort"), 0, out);
        one_of(
            object,
            &format!("{pat}/protocol"),
            &["TCP", "UDP", "SCTP"],
            out,
        );
        port_name(object, &format!("{pat}/name"), out);
        // On the host's network a container's port is the node's: the two must agree
        // (an unset hostPort is given the containerPort).
        if let (true, Some(host), Some(own)) = (
            host_network,
            p.get("hostPort").and_then(Value::as_i64),
            p.get("containerPort").and_then(Value::as_i64),
        ) {
            if host != 0 && host != own {
                out.push(Issue::error(
                    "kube-port",
                    format!("{pat}/hostPort"),
                    format!("hostPort {host} differs from containerPort {own}: with hostNetwork: true they must be equal"),
                ));
            }
        }
        if let Some(name) = p.get("name").and_then(Value::as_str) {
            if !port_names.insert(name) {
                out.push(Issue::error(
                    "kube-port-name",
                    format!("{pat}/name"),
                    format!("the port name {name:?} is used twice in the container"),
                ));
            }
        }
    }
    let requests = format!("{at}/resources/requests");
    let limits = format!("{at}/resources/limits");
    quantity_map(object, &requests, out);
    quantity_map(object, &limits, out);
    for at in [&requests, &limits] {
        for r in map_at(object, at).into_iter().flat_map(|m| m.keys()) {
            if !is_container_resource(r) {
                out.push(Issue {
                    at_key: true,
                    ..Issue::error(
                        "kube-quantity",
                        child(at, r),
                        format!("{r:?} is not a resource a container can ask for: cpu, memory, ephemeral-storage, hugepages-<size>, or an extended resource with a domain (example.com/gpu)"),
                    )
                });
            }
        }
    }
    if let (Some(req), Some(lim)) = (map_at(object, &requests), map_at(object, &limits)) {
        for (r, q) in req {
            let (Some(want), Some(cap)) = (
                lim.get(r).and_then(parse_quantity_value),
                parse_quantity_value(q),
            ) else {
                continue;
            };
            if cap > want {
                out.push(Issue::error(
                    "kube-quantity",
                    child(&requests, r),
                    format!("the {r} request ({}) is more than its limit ({}): a request must be less than or equal to the limit", show(q), show(&lim[r])),
                ));
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if field == "ephemeralContainers" {
            break;
        }
        self::probe(object, &format!("{at}/{probe}"), probe, out);
    }
    for hook in ["postStart", "preStop"] {
        let h = format!("{at}/lifecycle/{hook}");
        if let Some(handler) = map_at(object, &h) {
            let set: Vec<&str> = ["exec", "httpGet", "tcpSocket", "sleep"]
                .into_iter()
                .filter(|k| handler.get(*k).is_some_and(|v| !v.is_null()))
                .collect();
            let message = match set.len() {
                0 => format!("the {hook} hook has no handler: give it one of exec, httpGet, tcpSocket or sleep"),
                1 => continue,
                n => format!("the {hook} hook has {n} handlers ({}): give it exactly one", set.join(", ")),
            };
            out.push(conflict(h, message));
        }
    }
    let env = format!("{at}/env");
    for (i, e) in list_at(object, &env).iter().enumerate() {
        if let Some(name) = e.get("name").and_then(Value::as_str) {
            if name.is_empty()
                || name
                    .bytes()
                    .any(|b| !(b' '..=b'~').contains(&b) || b == b'=')
            {
                out.push(Issue::error(
                    "kube-name",
                    format!("{env}/{i}/name"),
                    format!("the environment variable name {name:?} is not valid: it must be printable ASCII characters other than `=`"),
                ));
            }
        }
        let Some(from) = e.get("valueFrom").and_then(Value::as_object) else {
            continue;
        };
        let at = format!("{env}/{i}/valueFrom");
        if e.get("value")
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty())
        {
            out.push(conflict(
                at.clone(),
                "an environment variable may have a value or a valueFrom, not both",
            ));
        }
        let sources: Vec<&str> = from
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, _)| k.as_str())
            .collect();
        match sources.len() {
            0 => out.push(conflict(
                at,
                "valueFrom names no source: give it one of configMapKeyRef, fieldRef, fileKeyRef, resourceFieldRef or secretKeyRef",
            )),
            1 => {}
            n => out.push(conflict(
                at,
                format!(
                    "valueFrom names {n} sources ({}); it may name one",
                    sources.join(", ")
                ),
            )),
        }
    }
    let mounts = format!("{at}/volumeMounts");
    let mut paths = std::collections::HashSet::new();
    for (i, m) in list_at(object, &mounts).iter().enumerate() {
        if let Some(path) = m.get("mountPath").and_then(Value::as_str) {
            if !paths.insert(path) {
                out.push(Issue::error(
                    "kube-volume-mount",
                    format!("{mounts}/{i}/mountPath"),
                    format!("the mount path {path:?} is used twice in the container"),
                ));
            }
        }
        if let Some(name) = m.get("name").and_then(Value::as_str) {
            if !volumes.contains(name) {
                out.push(Issue::error(
                    "kube-volume-mount",
                    format!("{mounts}/{i}/name"),
                    format!("the volume mount {name:?} names no volume of the pod: add it to the pod's `volumes`, or fix the name"),
                ));
            }
        }
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn probe(object: &Value, at: &str, which: &str, out: &mut Vec<Issue>) {
    let Some(p) = map_at(object, at) else {
        return;
    };
    let handlers: Vec<&str> = ["exec", "httpGet", "tcpSocket", "grpc"]
        .into_iter()
        .filter(|h| p.get(*h).is_some_and(|v| !v.is_null()))
        .collect();
    match handlers.len() {
        0 => out.push(Issue::error(
            "kube-probe",
            at,
            format!("the {which} has no handler: give it exactly one of exec, httpGet, tcpSocket or grpc"),
        )),
        1 => {}
        _ => out.push(Issue::error(
            "kube-probe",
            at,
            format!("the {which} has {} handlers ({}): give it exactly one", handlers.len(), handlers.join(", ")),
        )),
    }
    for port in ["httpGet/port", "tcpSocket/port"] {
        int_or_port_name(object, &format!("{at}/{port}"), out);
    }
    port_number(object, &format!("{at}/grpc/port"), 1, out);
    one_of(
        object,
        &format!("{at}/httpGet/scheme"),
        &["HTTP", "HTTPS"],
        out,
    );
    for (field, min) in [
        ("initialDelaySeconds", 0),
        ("timeoutSeconds", 1),
        ("periodSeconds", 1),
        ("successThreshold", 1),
        ("failureThreshold", 1),
    ] {
        if let Some(n) = p.get(field).and_then(Value::as_i64) {
            if n < min {
                out.push(Issue::error(
                    "kube-probe",
                    format!("{at}/{field}"),
                    format!("{which}.{field} is {n}; it must be at least {min}"),
                ));
            }
        }
    }
    if which != "readinessProbe" {
        if let Some(n) = p.get("successThreshold").and_then(Value::as_i64) {
            if n != 1 {
                out.push(Issue::error(
                    "kube-probe",
                    format!("{at}/successThreshold"),
                    format!("{which}.successThreshold must be 1, not {n}"),
                ));
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Quantities.

/// A resource quantity as the API server reads it: a signed decimal number with an
/// optional binary (Ki..Ei), decimal (n, u, m, k, M..E) or exponent (e3, E-2) suffix.
/// Returns its value, for comparisons.
pub fn parse_quantity(s: &str) -> Option<f64> {
    let (sign, body) = match s.as_bytes().first()? {
        b'+' => (1.0, &s[1..]),
        b'-' => (-1.0, &s[1..]),
        _ => (1.0, s),
    };
    let end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(end);
    if number.is_empty()
        || number.matches('.').count() > 1
        || !number.bytes().any(|b| b.is_ascii_digit())
    {
        return None;
    }
    let n: f64 = number.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        exp => {
            let digits = exp.strip_prefix(['e', 'E'])?;
            let digits = digits.strip_prefix('+').unwrap_or(digits);
            let unsigned = digits.strip_prefix('-').unwrap_or(digits);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            10f64.powi(digits.parse().ok()?)
        }
    };
    Some(sign * n * scale)
}

fn parse_quantity_value(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => parse_quantity(s),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

fn quantity(object: &Value, pointer: &str, out: &mut Vec<Issue>) {
    let Some(v) = lookup(object, pointer) else {
        return;
    };
    let field = pointer.rsplit('/').next().unwrap_or(pointer);
    match v {
        Value::String(s) => match parse_quantity(s) {
            None => out.push(
                Issue::error(
                    "kube-quantity",
                    pointer,
                    format!("{field}: {s:?} is not a quantity"),
                )
                .help("write a number with an optional unit: `500m` or `2` CPUs, `128Mi` or `1Gi` of memory"),
            ),
            Some(n) if n < 0.0 => out.push(Issue::error(
                "kube-quantity",
                pointer,
                format!("{field}: {s:?} is negative; it must be greater than or equal to 0"),
            )),
            Some(_) => {}
        },
        Value::Number(n) if n.as_f64().is_some_and(|f| f < 0.0) => out.push(Issue::error(
            "kube-quantity",
            pointer,
            format!("{field}: {n} is negative; it must be greater than or equal to 0"),
        )),
        _ => {}
    }
}

fn quantity_map(object: &Value, pointer: &str, out: &mut Vec<Issue>) {
    if let Some(map) = map_at(object, pointer) {
        for k in map.keys() {
            quantity(object, &child(pointer, k), out);
        }
    }
}

/// What a container may list under `resources`: the standard names, huge pages, or an
/// extended resource named with a domain.
fn is_container_resource(name: &str) -> bool {
    match name.split_once('/') {
        None => {
            matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
        }
        Some(_) => is_qualified_name(name),
    }
}

/// A pod's or container's `securityContext`: the seccomp and AppArmor profile types,
/// and a `localhostProfile` exactly when the type is Localhost.
fn security_context(object: &Value, at: &str, out: &mut Vec<Issue>) {
    for profile in ["seccompProfile", "appArmorProfile"] {
        let p = format!("{at}/{profile}");
        if map_at(object, &p).is_none() {
            continue;
        }
        one_of(
            object,
            &format!("{p}/type"),
            &["RuntimeDefault", "Unconfined", "Localhost"],
            out,
        );
        let localhost = str_at(object, &format!("{p}/type")) == Some("Localhost");
        let named = str_at(object, &format!("{p}/localhostProfile")).is_some_and(|s| !s.is_empty());
        if localhost && !named {
            out.push(conflict(
                format!("{p}/type"),
                format!(
                    "a Localhost {profile} needs localhostProfile, the profile's file on the node"
                ),
            ));
        } else if !localhost && named {
            out.push(conflict(
                format!("{p}/localhostProfile"),
                format!("localhostProfile may only be set when the {profile} type is Localhost"),
            ));
        }
    }
}

/// Where a pod may run: tolerations, topology spread constraints, node and pod affinity.
fn scheduling(object: &Value, spec: &str, out: &mut Vec<Issue>) {
    let tolerations = format!("{spec}/tolerations");
    for (i, t) in list_at(object, &tolerations).iter().enumerate() {
        let at = format!("{tolerations}/{i}");
        let operator = t.get("operator").and_then(Value::as_str).unwrap_or("");
        if !operator.is_empty() {
            one_of(object, &format!("{at}/operator"), &["Exists", "Equal"], out);
        }
        if t.get("effect")
            .and_then(Value::as_str)
            .is_some_and(|e| !e.is_empty())
        {
            one_of(
                object,
                &format!("{at}/effect"),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
                out,
            );
        }
        let key = t.get("key").and_then(Value::as_str).unwrap_or("");
        if key.is_empty() && operator != "Exists" {
            out.push(conflict(
                format!("{at}/operator"),
                "a toleration without a key must have operator: Exists (it then tolerates every taint)",
            ));
        }
        if !key.is_empty() && !is_qualified_name(key) {
            out.push(Issue::error(
                "kube-label",
                format!("{at}/key"),
                format!("the toleration key {key:?} is not valid: {KEY_SYNTAX}"),
            ));
        }
        if operator == "Exists"
            && t.get("value")
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty())
        {
            out.push(conflict(
                format!("{at}/value"),
                "a toleration with operator: Exists has no value: remove it, or use operator: Equal",
            ));
        }
        if t.get("tolerationSeconds").is_some_and(|s| !s.is_null())
            && t.get("effect").and_then(Value::as_str) != Some("NoExecute")
        {
            out.push(conflict(
                format!("{at}/tolerationSeconds"),
                "tolerationSeconds only applies to effect: NoExecute (how long a pod stays after the taint appears)",
            ));
        }
    }
    let spread = format!("{spec}/topologySpreadConstraints");
    for (i, c) in list_at(object, &spread).iter().enumerate() {
        let at = format!("{spread}/{i}");
        at_least(object, &format!("{at}/maxSkew"), 1, out);
        at_least(object, &format!("{at}/minDomains"), 1, out);
        one_of(
            object,
            &format!("{at}/whenUnsatisfiable"),
            &["DoNotSchedule", "ScheduleAnyway"],
            out,
        );
        for policy in ["nodeAffinityPolicy", "nodeTaintsPolicy"] {
            one_of(object, &format!("{at}/{policy}"), &["Honor", "Ignore"], out);
        }
        if c.get("minDomains").is_some_and(|m| !m.is_null())
            && c.get("whenUnsatisfiable").and_then(Value::as_str) != Some("DoNotSchedule")
        {
            out.push(conflict(
                format!("{at}/minDomains"),
                "minDomains only applies to whenUnsatisfiable: DoNotSchedule",
            ));
        }
        selector(object, &format!("{at}/labelSelector"), out);
    }
    let node = format!("{spec}/affinity/nodeAffinity");
    let required =
        format!("{node}/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms");
    for i in 0..list_at(object, &required).len() {
        node_selector_term(object, &format!("{required}/{i}"), out);
    }
    let preferred = format!("{node}/preferredDuringSchedulingIgnoredDuringExecution");
    for i in 0..list_at(object, &preferred).len() {
        node_selector_term(object, &format!("{preferred}/{i}/preference"), out);
    }
    for kind in ["podAffinity", "podAntiAffinity"] {
        let at = format!("{spec}/affinity/{kind}");
        let required = format!("{at}/requiredDuringSchedulingIgnoredDuringExecution");
        for i in 0..list_at(object, &required).len() {
            selector(object, &format!("{required}/{i}/labelSelector"), out);
        }
        let preferred = format!("{at}/preferredDuringSchedulingIgnoredDuringExecution");
        for i in 0..list_at(object, &preferred).len() {
            selector(
                object,
                &format!("{preferred}/{i}/podAffinityTerm/labelSelector"),
                out,
            );
        }
    }
}

/// A node selector term's requirements: In and NotIn take values, Exists and
/// DoesNotExist none, Gt and Lt one integer.
fn node_selector_term(object: &Value, term: &str, out: &mut Vec<Issue>) {
    for list in ["matchExpressions", "matchFields"] {
        let exprs = format!("{term}/{list}");
        for (i, e) in list_at(object, &exprs).iter().enumerate() {
            let at = format!("{exprs}/{i}");
            one_of(
                object,
                &format!("{at}/operator"),
                &["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"],
                out,
            );
            let values = e.get("values").and_then(Value::as_array);
            let count = values.map_or(0, Vec::len);
            let one_integer = matches!(values.map(Vec::as_slice), Some([Value::String(v)]) if v.parse::<i64>().is_ok());
            let why = match e.get("operator").and_then(Value::as_str) {
                Some("In" | "NotIn") if count == 0 => "In and NotIn need at least one value",
                Some("Exists" | "DoesNotExist") if count > 0 => {
                    "Exists and DoesNotExist take no values"
                }
                Some("Gt" | "Lt") if !one_integer => "Gt and Lt take exactly one value, an integer",
                _ => continue,
            };
            out.push(Issue::error("kube-selector", at, why.to_string()));
        }
    }
}

// ---------------------------------------------------------------------------------
// Rollouts, scaling, budgets and Jobs: counts the server takes as non-negative, and the
// combinations of fields it refuses.

/// `kube-range`: a count or duration that must be at least `min`.
fn at_least(object: &Value, pointer: &str, min: i64, out: &mut Vec<Issue>) {
    if let Some(n) = lookup(object, pointer).and_then(Value::as_i64) {
        if n < min {
            let field = pointer.rsplit('/').next().unwrap_or(pointer);
            out.push(Issue::error(
                "kube-range",
                pointer,
                format!("{field} is {n}; it must be at least {min}"),
            ));
        }
    }
}

/// `kube-field-conflict`: fields the server refuses together, or one it needs beside
/// another.
fn conflict(pointer: impl Into<String>, message: impl Into<String>) -> Issue {
    Issue::error("kube-field-conflict", pointer, message)
}

/// What an int-or-percent count (`maxUnavailable`, `minAvailable`) holds.
#[derive(PartialEq)]
enum Count {
    Absent,
    Zero,
    NonZero,
    /// Refused, and already reported.
    Invalid,
}

/// An int-or-percent count: a whole number, or a string of digits and `%`. `cap_100`:
/// whether the server refuses a percentage over 100 here.
fn int_or_percent(object: &Value, pointer: &str, cap_100: bool, out: &mut Vec<Issue>) -> Count {
    let field = pointer.rsplit('/').next().unwrap_or(pointer);
    match lookup(object, pointer) {
        None | Some(Value::Null) => Count::Absent,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(n) if n < 0 => {
                out.push(Issue::error(
                    "kube-range",
                    pointer,
                    format!("{field} is {n}; it must be at least 0"),
                ));
                Count::Invalid
            }
            Some(0) => Count::Zero,
            Some(_) => Count::NonZero,
            // A fraction: the schema walk reports it.
            None => Count::Invalid,
        },
        Some(Value::String(s)) => {
            let percent = s
                .strip_suffix('%')
                .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| d.parse::<u64>().ok());
            match percent {
                None => {
                    out.push(
                        Issue::error(
                            "kube-range",
                            pointer,
                            format!("{field}: {s:?} is neither a whole number nor a percentage"),
                        )
                        .help(format!("write a number without quotes ({field}: 1) or a percentage ({field}: 25%)")),
                    );
                    Count::Invalid
                }
                Some(p) if cap_100 && p > 100 => {
                    out.push(Issue::error(
                        "kube-range",
                        pointer,
                        format!("{field} is {s}; it must not be more than 100%"),
                    ));
                    Count::Invalid
                }
                Some(0) => Count::Zero,
                Some(_) => Count::NonZero,
            }
        }
        // Another type: the schema walk reports it.
        Some(_) => Count::Invalid,
    }
}

/// A rolling update that may take no pod down and add none could never progress.
fn both_zero(at: &str, unavailable: Count, surge: Count, out: &mut Vec<Issue>) {
    if unavailable == Count::Zero && surge == Count::Zero {
        out.push(
            Issue::error(
                "kube-range",
                format!("{at}/maxUnavailable"),
                "maxUnavailable and maxSurge are both 0, so a rollout could never replace a pod",
            )
            .help("let one of them be above 0: maxUnavailable: 1, or maxSurge: 1"),
        );
    }
}

/// A workload's update strategy at `strategy`: its `type` is RollingUpdate or `other`
/// (Recreate, OnDelete), and a `rollingUpdate` is only read beside RollingUpdate (the
/// server refuses one beside `other` when `refused`). Returns the `rollingUpdate`'s
/// pointer when its fields apply.
fn rolling_update(
    object: &Value,
    strategy: &str,
    other: &str,
    refused: bool,
    out: &mut Vec<Issue>,
) -> Option<String> {
    let kind = format!("{strategy}/type");
    one_of(object, &kind, &["RollingUpdate", other], out);
    let at = format!("{strategy}/rollingUpdate");
    if !lookup(object, &at).is_some_and(Value::is_object) {
        return None;
    }
    if str_at(object, &kind) != Some(other) {
        return Some(at);
    }
    if refused {
        out.push(
            conflict(
                at,
                format!("rollingUpdate may not be set when the strategy type is {other}"),
            )
            .help("remove rollingUpdate, or set type: RollingUpdate"),
        );
    }
    None
}

fn deployment_rollout(object: &Value, out: &mut Vec<Issue>) {
    let Some(at) = rolling_update(object, "/spec/strategy", "Recreate", true, out) else {
        return;
    };
    // Absent, each defaults to 25%.
    let unavailable = int_or_percent(object, &format!("{at}/maxUnavailable"), true, out);
    let surge = int_or_percent(object, &format!("{at}/maxSurge"), false, out);
    both_zero(&at, unavailable, surge, out);
}

fn daemon_set_rollout(object: &Value, out: &mut Vec<Issue>) {
    for field in ["minReadySeconds", "revisionHistoryLimit"] {
        at_least(object, &format!("/spec/{field}"), 0, out);
    }
    let Some(at) = rolling_update(object, "/spec/updateStrategy", "OnDelete", false, out) else {
        return;
    };
    let unavailable = int_or_percent(object, &format!("{at}/maxUnavailable"), true, out);
    let mut surge = int_or_percent(object, &format!("{at}/maxSurge"), true, out);
    // A DaemonSet's maxSurge defaults to 0 (its maxUnavailable to 1).
    if surge == Count::Absent {
        surge = Count::Zero;
    }
    both_zero(&at, unavailable, surge, out);
}

fn stateful_set_rollout(object: &Value, out: &mut Vec<Issue>) {
    for field in ["replicas", "minReadySeconds", "revisionHistoryLimit"] {
        at_least(object, &format!("/spec/{field}"), 0, out);
    }
    one_of(
        object,
        "/spec/podManagementPolicy",
        &["OrderedReady", "Parallel"],
        out,
    );
    for when in ["whenDeleted", "whenScaled"] {
        one_of(
            object,
            &format!("/spec/persistentVolumeClaimRetentionPolicy/{when}"),
            &["Retain", "Delete"],
            out,
        );
    }
    if let Some(at) = rolling_update(object, "/spec/updateStrategy", "OnDelete", true, out) {
        at_least(object, &format!("{at}/partition"), 0, out);
    }
}

/// A Job's spec, or a CronJob's job template's.
fn job_spec(object: &Value, spec: &str, out: &mut Vec<Issue>) {
    for field in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ] {
        at_least(object, &format!("{spec}/{field}"), 0, out);
    }
    one_of(
        object,
        &format!("{spec}/completionMode"),
        &["NonIndexed", "Indexed"],
        out,
    );
    if str_at(object, &format!("{spec}/completionMode")) == Some("Indexed")
        && lookup(object, &format!("{spec}/completions")).is_none_or(Value::is_null)
    {
        out.push(conflict(
            format!("{spec}/completionMode"),
            "an Indexed Job needs completions: set how many indexes it runs",
        ));
    }
}

fn autoscaler(object: &Value, out: &mut Vec<Issue>) {
    at_least(object, "/spec/minReplicas", 1, out);
    at_least(object, "/spec/maxReplicas", 1, out);
    for (i, m) in list_at(object, "/spec/metrics").iter().enumerate() {
        let at = format!("/spec/metrics/{i}");
        one_of(
            object,
            &format!("{at}/type"),
            &[
                "Object",
                "Pods",
                "Resource",
                "ContainerResource",
                "External",
            ],
            out,
        );
        let source = match m.get("type").and_then(Value::as_str) {
            Some("Object") => "object",
            Some("Pods") => "pods",
            Some("Resource") => "resource",
            Some("ContainerResource") => "containerResource",
            Some("External") => "external",
            _ => continue,
        };
        if m.get(source).is_none_or(Value::is_null) {
            out.push(conflict(
                format!("{at}/type"),
                format!(
                    "a metric of this type needs its `{source}` field, which says what to measure"
                ),
            ));
        }
        one_of(
            object,
            &format!("{at}/{source}/target/type"),
            &["Utilization", "Value", "AverageValue"],
            out,
        );
    }
    let (Some(min), Some(max)) = (
        lookup(object, "/spec/minReplicas").and_then(Value::as_i64),
        lookup(object, "/spec/maxReplicas").and_then(Value::as_i64),
    ) else {
        return;
    };
    if max >= 1 && min > max {
        out.push(Issue::error(
            "kube-range",
            "/spec/maxReplicas",
            format!("maxReplicas ({max}) is less than minReplicas ({min}); it must be greater than or equal to it"),
        ));
    }
}

fn disruption_budget(object: &Value, out: &mut Vec<Issue>) {
    let min = int_or_percent(object, "/spec/minAvailable", true, out);
    let max = int_or_percent(object, "/spec/maxUnavailable", true, out);
    if min != Count::Absent && max != Count::Absent {
        out.push(
            conflict(
                "/spec/maxUnavailable",
                "minAvailable and maxUnavailable cannot both be set",
            )
            .help("keep one: maxUnavailable: 1 lets a drain go on while the app has more than one pod"),
        );
    }
}

// ---------------------------------------------------------------------------------
// ConfigMaps and Secrets.

/// `kube-config-key`: the keys of a ConfigMap's or Secret's data become file names in a
/// volume, so the server allows only letters, digits, `-`, `_` and `.`.
fn config_keys(object: &Value, kind: &str, out: &mut Vec<Issue>) {
    let maps: &[&str] = if kind == "Secret" {
        &["/data", "/stringData"]
    } else {
        &["/data", "/binaryData"]
    };
    for &at in maps {
        let Some(map) = map_at(object, at) else {
            continue;
        };
        for k in map.keys() {
            let why = if k.is_empty() || k.len() > 253 {
                Some("it must have 1 to 253 characters")
            } else if !k
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                Some("only letters, digits, `-`, `_` and `.` are allowed")
            } else if k == "." || k == ".." || k.starts_with("..") {
                Some("it must not be `.` or `..`, or start with `..`")
            } else {
                None
            };
            if let Some(why) = why {
                out.push(Issue {
                    at_key: true,
                    ..Issue::error(
                        "kube-config-key",
                        child(at, k),
                        format!("the key {k:?} is not a valid {kind} key: {why}"),
                    )
                });
            }
        }
    }
    if kind == "ConfigMap" {
        if let (Some(data), Some(binary)) = (map_at(object, "/data"), map_at(object, "/binaryData"))
        {
            for k in binary.keys().filter(|k| data.contains_key(*k)) {
                out.push(Issue {
                    at_key: true,
                    ..Issue::error(
                        "kube-config-key",
                        child("/binaryData", k),
                        format!("the key {k:?} is in both data and binaryData; a key may be in one of them only"),
                    )
                });
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Storage and networks.

/// A PersistentVolumeClaim's spec (or a StatefulSet's claim template's): access modes,
/// the volume mode, and a storage request.
fn claim_spec(object: &Value, spec: &str, out: &mut Vec<Issue>) {
    if map_at(object, spec).is_none() {
        return;
    }
    access_modes(object, &format!("{spec}/accessModes"), out);
    one_of(
        object,
        &format!("{spec}/volumeMode"),
        &["Filesystem", "Block"],
        out,
    );
    let requests = format!("{spec}/resources/requests");
    quantity_map(object, &requests, out);
    quantity_map(object, &format!("{spec}/resources/limits"), out);
    if map_at(object, &requests).is_none_or(|r| !r.contains_key("storage")) {
        out.push(Issue::error(
            "kube-required-field",
            format!("{spec}/resources"),
            "a claim must request storage: set resources.requests.storage",
        ));
    }
}

/// A volume's or claim's access modes: at least one, each a known mode, and
/// ReadWriteOncePod alone.
fn access_modes(object: &Value, at: &str, out: &mut Vec<Issue>) {
    let modes = list_at(object, at);
    if modes.is_empty() {
        out.push(Issue::error(
            "kube-required-field",
            at,
            "at least one access mode is required: ReadWriteOnce, ReadOnlyMany, ReadWriteMany or ReadWriteOncePod",
        ));
        return;
    }
    for i in 0..modes.len() {
        one_of(
            object,
            &format!("{at}/{i}"),
            &[
                "ReadWriteOnce",
                "ReadOnlyMany",
                "ReadWriteMany",
                "ReadWriteOncePod",
            ],
            out,
        );
    }
    if modes.len() > 1 && modes.iter().any(|m| m.as_str() == Some("ReadWriteOncePod")) {
        out.push(conflict(
            at,
            "ReadWriteOncePod may not be combined with other access modes",
        ));
    }
}

/// A NetworkPolicy peer's `ipBlock`: a CIDR, and exceptions inside it.
fn ip_block(object: &Value, at: &str, out: &mut Vec<Issue>) {
    let Some(cidr_text) = str_at(object, &format!("{at}/cidr")) else {
        return;
    };
    let Some(cidr) = parse_cidr(cidr_text) else {
        out.push(Issue::error(
            "kube-cidr",
            format!("{at}/cidr"),
            format!("{cidr_text:?} is not a CIDR: write an address and a prefix length, like 10.0.0.0/16 or 2001:db8::/64"),
        ));
        return;
    };
    for (i, e) in list_at(object, &format!("{at}/except")).iter().enumerate() {
        let Some(text) = e.as_str() else {
            continue;
        };
        let why = match parse_cidr(text) {
            None => "is not a CIDR",
            Some(inner) if !cidr.strictly_contains(&inner) => "is not inside the block's cidr",
            Some(_) => continue,
        };
        out.push(Issue::error(
            "kube-cidr",
            format!("{at}/except/{i}"),
            format!("the exception {text:?} {why} ({cidr_text})"),
        ));
    }
}

/// An address range: the address as 128 bits (IPv4 mapped), and the prefix length.
struct Cidr {
    v4: bool,
    bits: u128,
    len: u32,
}

impl Cidr {
    fn strictly_contains(&self, inner: &Cidr) -> bool {
        let width = if self.v4 { 32 } else { 128 };
        let mask = |len: u32| -> u128 {
            if len == 0 {
                0
            } else {
                (u128::MAX << (width - len)) & (u128::MAX >> (128 - width))
            }
        };
        self.v4 == inner.v4
            && inner.len > self.len
            && inner.bits & mask(self.len) == self.bits & mask(self.len)
    }
}

fn parse_cidr(text: &str) -> Option<Cidr> {
    let (addr, len) = text.split_once('/')?;
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len: u32 = len.parse().ok()?;
    match addr.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(a) if len <= 32 => Some(Cidr {
            v4: true,
            bits: u32::from(a) as u128,
            len,
        }),
        std::net::IpAddr::V6(a) if len <= 128 => Some(Cidr {
            v4: false,
            bits: u128::from(a),
            len,
        }),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------
// Services, Ingresses, NetworkPolicies.

fn service(object: &Value, out: &mut Vec<Issue>) {
    one_of(
        object,
        "/spec/type",
        &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"],
        out,
    );
    one_of(object, "/spec/sessionAffinity", &["None", "ClientIP"], out);
    one_of(
        object,
        "/spec/externalTrafficPolicy",
        &["Cluster", "Local"],
        out,
    );
    one_of(
        object,
        "/spec/internalTrafficPolicy",
        &["Cluster", "Local"],
        out,
    );
    labels(object, "/spec/selector", "kube-selector", out);
    let ports = list_at(object, "/spec/ports");
    let kind = str_at(object, "/spec/type").unwrap_or("ClusterIP");
    let headless = str_at(object, "/spec/clusterIP") == Some("None");
    if headless && matches!(kind, "NodePort" | "LoadBalancer") {
        out.push(conflict(
            "/spec/clusterIP",
            format!("clusterIP may not be None (headless) for a {kind} Service"),
        ));
    }
    if kind == "ExternalName" {
        match str_at(object, "/spec/externalName") {
            None | Some("") => out.push(conflict(
                "/spec/type",
                "an ExternalName Service needs spec.externalName, the DNS name it points at",
            )),
            // A fully qualified name may end in a dot.
            Some(name) if !is_dns_subdomain(name.strip_suffix('.').unwrap_or(name)) => {
                out.push(Issue::error(
                    "kube-name",
                    "/spec/externalName",
                    format!("the externalName {name:?} is not a valid DNS-1123 subdomain (lower-case letters, digits, `-` and `.`)"),
                ))
            }
            Some(_) => {}
        }
        if str_at(object, "/spec/clusterIP").is_some_and(|ip| !ip.is_empty()) {
            out.push(conflict(
                "/spec/clusterIP",
                "an ExternalName Service has no cluster IP: remove clusterIP",
            ));
        }
    }
    if ports.is_empty() && !headless && kind != "ExternalName" {
        out.push(
            Issue::error(
                "kube-required-field",
                "/spec",
                "a Service needs at least one port, unless it is headless (clusterIP: None) or an ExternalName",
            )
            .help("add spec.ports, or set clusterIP: None for a headless Service"),
        );
    }
    let mut names = std::collections::HashSet::new();
    let mut numbers = std::collections::HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let at = format!("/spec/ports/{i}");
        if let Some(port) = p.get("port").and_then(Value::as_i64) {
            let protocol = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            if !numbers.insert((port, protocol)) {
                out.push(Issue::error(
                    "kube-port",
                    format!("{at}/port"),
                    format!("port {port}/{protocol} is listed twice in the Service"),
                ));
            }
        }
        if kind == "ClusterIP"
            && p.get("nodePort")
                .and_then(Value::as_i64)
                .is_some_and(|n| n != 0)
        {
            out.push(conflict(
                format!("{at}/nodePort"),
                "nodePort may not be set on a ClusterIP Service: only NodePort and LoadBalancer Services open a port on the nodes",
            ));
        }
        port_number(object, &format!("{at}/port"), 1, out);
        port_number(object, &format!("{at}/nodePort"), 0, out);
        int_or_port_name(object, &format!("{at}/targetPort"), out);
        one_of(
            object,
            &format!("{at}/protocol"),
            &["TCP", "UDP", "SCTP"],
            out,
        );
        match p.get("name").and_then(Value::as_str) {
            Some(name) if !is_dns_label(name) => out.push(Issue::error(
                "kube-port-name",
                format!("{at}/name"),
                format!("the Service port name {name:?} is not a valid DNS-1123 label"),
            )),
            Some(name) if !names.insert(name) => out.push(Issue::error(
                "kube-port-name",
                format!("{at}/name"),
                format!("the Service port name {name:?} is used twice"),
            )),
            None if ports.len() > 1 => out.push(Issue::error(
                "kube-port-name",
                at,
                "a Service with several ports must name each of them",
            )),
            _ => {}
        }
    }
}

fn ingress(object: &Value, out: &mut Vec<Issue>) {
    for (i, rule) in list_at(object, "/spec/rules").iter().enumerate() {
        let at = format!("/spec/rules/{i}");
        if let Some(host) = rule.get("host").and_then(Value::as_str) {
            let bare = host.strip_prefix("*.").unwrap_or(host);
            if !is_dns_subdomain(bare) {
                out.push(Issue::error(
                    "kube-ingress-host",
                    format!("{at}/host"),
                    format!("the host {host:?} is not a valid DNS-1123 subdomain (a `*.` wildcard is allowed as its first label)"),
                ));
            }
        }
        let paths = format!("{at}/http/paths");
        for (j, p) in list_at(object, &paths).iter().enumerate() {
            let at = format!("{paths}/{j}");
            one_of(
                object,
                &format!("{at}/pathType"),
                &["Exact", "Prefix", "ImplementationSpecific"],
                out,
            );
            if let Some(why) = ingress_path_error(p) {
                out.push(Issue::error("kube-ingress-path", format!("{at}/path"), why));
            }
            ingress_backend(object, &format!("{at}/backend"), out);
        }
    }
    ingress_backend(object, "/spec/defaultBackend", out);
}

/// Why the server refuses an Ingress path, if it does: Exact and Prefix paths are
/// absolute and clean; an ImplementationSpecific one only needs to be absolute.
fn ingress_path_error(p: &Value) -> Option<String> {
    let path = p.get("path").and_then(Value::as_str).unwrap_or("");
    let exact_or_prefix = match p.get("pathType").and_then(Value::as_str) {
        Some("Exact" | "Prefix") => true,
        Some("ImplementationSpecific") => false,
        _ => return None,
    };
    if (exact_or_prefix || !path.is_empty()) && !path.starts_with('/') {
        return Some(format!("the path {path:?} must be absolute (start with /)"));
    }
    if !exact_or_prefix {
        return None;
    }
    if let Some(seq) = ["//", "/./", "/../", "%2f", "%2F"]
        .into_iter()
        .find(|s| path.contains(s))
    {
        return Some(format!("the path {path:?} must not contain {seq:?}"));
    }
    ["/..", "/."]
        .into_iter()
        .find(|s| path.ends_with(s))
        .map(|s| format!("the path {path:?} must not end with {s:?}"))
}

/// An Ingress backend: a Service or a resource, and a Service port by name or number.
fn ingress_backend(object: &Value, at: &str, out: &mut Vec<Issue>) {
    let Some(backend) = map_at(object, at) else {
        return;
    };
    let service = backend.get("service").filter(|s| !s.is_null());
    if service.is_some() == backend.get("resource").is_some_and(|r| !r.is_null()) {
        out.push(conflict(
            at,
            "a backend names exactly one of service or resource",
        ));
    }
    let Some(service) = service.and_then(Value::as_object) else {
        return;
    };
    let port = service.get("port").and_then(Value::as_object);
    let named = port
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let numbered = port
        .and_then(|p| p.get("number"))
        .and_then(Value::as_i64)
        .is_some_and(|n| n != 0);
    if named == numbered {
        out.push(conflict(
            format!("{at}/service"),
            "a backend's Service port has a name or a number, exactly one of them",
        ));
    }
    if named {
        port_name(object, &format!("{at}/service/port/name"), out);
    }
    port_number(object, &format!("{at}/service/port/number"), 1, out);
}

fn network_policy(object: &Value, out: &mut Vec<Issue>) {
    selector(object, "/spec/podSelector", out);
    for (direction, peers) in [("ingress", "from"), ("egress", "to")] {
        let rules = format!("/spec/{direction}");
        for i in 0..list_at(object, &rules).len() {
            let peer_list = format!("{rules}/{i}/{peers}");
            for j in 0..list_at(object, &peer_list).len() {
                for sel in ["podSelector", "namespaceSelector"] {
                    selector(object, &format!("{peer_list}/{j}/{sel}"), out);
                }
                ip_block(object, &format!("{peer_list}/{j}/ipBlock"), out);
            }
            let ports = format!("{rules}/{i}/ports");
            for j in 0..list_at(object, &ports).len() {
                one_of(
                    object,
                    &format!("{ports}/{j}/protocol"),
                    &["TCP", "UDP", "SCTP"],
                    out,
                );
                int_or_port_name(object, &format!("{ports}/{j}/port"), out);
            }
        }
    }
    for (i, t) in list_at(object, "/spec/policyTypes").iter().enumerate() {
        if t.is_string() {
            one_of(
                object,
                &format!("/spec/policyTypes/{i}"),
                &["Ingress", "Egress"],
                out,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_as_the_api_server_reads_them() {
        for (s, v) in [
            ("1", 1.0),
            ("500m", 0.5),
            ("128Mi", 134217728.0),
            ("1e3", 1000.0),
            ("1.5Gi", 1.5 * 1073741824.0),
            (".5", 0.5),
            ("+2k", 2000.0),
        ] {
            assert_eq!(parse_quantity(s), Some(v), "{s}");
        }
        for s in ["lots", "", "1.2.3", "1Gb", "Mi", "1 Gi", "1e", "0x10"] {
            assert_eq!(parse_quantity(s), None, "{s}");
        }
    }

    #[test]
    fn iana_service_names() {
        for ok in ["http", "metrics-9090", "h2c", "a"] {
            assert!(is_iana_svc_name(ok), "{ok}");
        }
        for bad in [
            "HTTP",
            "8080",
            "-http",
            "http-",
            "my--port",
            "prometheus-metrics",
            "",
        ] {
            assert!(!is_iana_svc_name(bad), "{bad}");
        }
    }
}
