//! What the API server refuses that its OpenAPI schema cannot say: the checks of the
//! API's own validation package (k8s.io/kubernetes/pkg/apis/*/validation), for the
//! fields teams write most. The schema says `ports[].name` is a string; the server
//! says it is an IANA service name of at most 15 characters. Each check is a named rule
//! (docs/rules.md) so a finding says which promise of the server it anticipates.
//!
//! Every function here takes the object as JSON of any shape: a value of the wrong type
//! was already reported by the schema walk, so it is skipped here, never a panic.
//!
//! `check` below picks the checks for a kind; the helpers after it (lookups, `one_of`,
//! `at_least`, `conflict`) serve every part. The parts, by what they check: `meta`
//! (labels, annotations, selectors), `pods` (pod specs and containers), `quantities`,
//! `workloads` (rollouts, Jobs, autoscalers, budgets), `cron` (CronJob schedules),
//! `storage` (ConfigMaps, Secrets, claims), `network` (ports, Services, Ingresses,
//! NetworkPolicies).

use serde_json::{Map, Value};

use super::kube::{is_dns_label, is_dns_subdomain, Issue};
use crate::pointer::{escape as escape_pointer, lookup};

mod cron;
mod meta;
mod network;
mod pods;
mod quantities;
mod storage;
mod workloads;

pub use meta::object_metadata;
use meta::{object_meta, selector, workload_selector};
use network::{ingress, network_policy, service};
use pods::pod_spec;
use quantities::quantity_map;
use storage::{claim_spec, config_keys, persistent_volume, secret_type};
use workloads::{
    autoscaler, daemon_set_rollout, deployment_rollout, disruption_budget, job_spec,
    stateful_set_rollout,
};

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
        let claims: Vec<&str> = match kind {
            "StatefulSet" => list_at(object, "/spec/volumeClaimTemplates")
                .iter()
                .filter_map(|c| lookup(c, "/metadata/name").and_then(Value::as_str))
                .collect(),
            _ => Vec::new(),
        };
        pod_spec(
            object,
            &format!("{template}/spec"),
            restart,
            &claims,
            &mut out,
        );
        // A deadline ends a pod for good, which a controller that keeps pods running
        // would undo at once; only Jobs' pods may have one.
        let deadline = format!("{template}/spec/activeDeadlineSeconds");
        if restart == ["Always"] && lookup(object, &deadline).is_some_and(|v| !v.is_null()) {
            out.push(conflict(
                deadline,
                format!(
                    "a {kind}'s pods may not have activeDeadlineSeconds: only a Job's pods can"
                ),
            ));
        }
        workload_selector(object, kind, template, &mut out);
    }
    match kind {
        "Pod" => pod_spec(
            object,
            "/spec",
            &["Always", "OnFailure", "Never"],
            &[],
            &mut out,
        ),
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
        "ConfigMap" => config_keys(object, kind, &mut out),
        "Secret" => {
            config_keys(object, kind, &mut out);
            secret_type(object, &mut out);
        }
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
        "PersistentVolume" => persistent_volume(object, &mut out),
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
                if let Some(why) = cron::schedule_error(schedule) {
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
            if let Some(zone) = str_at(object, "/spec/timeZone") {
                if let Some(why) = cron::time_zone_error(zone) {
                    out.push(Issue::error(
                        "kube-cron-schedule",
                        "/spec/timeZone",
                        format!("the timeZone {zone:?} is refused: {why}"),
                    ));
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

/// The list under `key` of an object, or none.
fn items<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
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
    let field = field_name(pointer);
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

/// The field a pointer ends at, for messages. A list item is named by its list:
/// `accessModes[1]`, not `1`.
fn field_name(pointer: &str) -> String {
    let mut segments = pointer.rsplit('/');
    let last = segments.next().unwrap_or(pointer);
    match segments.next() {
        Some(list) if last.bytes().all(|b| b.is_ascii_digit()) => format!("{list}[{last}]"),
        _ => last.to_string(),
    }
}

/// An address as the API's legacy IP fields take it: what the standard parser takes, or
/// IPv4 with leading zeros, which objects written before Kubernetes 1.33 may have.
pub(super) fn is_ip(s: &str) -> bool {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 3
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u16>().is_ok_and(|n| n <= 255)
        })
}

/// `kube-range`: a count or duration that must be from `min` to `max`; `span` says what
/// the bounds mean (`"10 minutes to 2^32 seconds"`), or is empty.
fn between(
    object: &Value,
    pointer: &str,
    (min, max): (i64, i64),
    span: &str,
    out: &mut Vec<Issue>,
) {
    if let Some(n) = lookup(object, pointer).and_then(Value::as_i64) {
        if !(min..=max).contains(&n) {
            let field = field_name(pointer);
            let span = if span.is_empty() {
                String::new()
            } else {
                format!(" ({span})")
            };
            out.push(Issue::error(
                "kube-range",
                pointer,
                format!("{field} is {n}; it must be between {min} and {max}{span}"),
            ));
        }
    }
}

/// `kube-range`: a count or duration that must be at least `min`.
fn at_least(object: &Value, pointer: &str, min: i64, out: &mut Vec<Issue>) {
    if let Some(n) = lookup(object, pointer).and_then(Value::as_i64) {
        if n < min {
            let field = field_name(pointer);
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

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
