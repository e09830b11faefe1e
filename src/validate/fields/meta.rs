//! Labels, annotations and label selectors: the syntax of keys and values, the size of
//! annotations, and a workload's selector against its own pod template.

use super::*;

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

pub(super) const KEY_SYNTAX: &str = "keys are [prefix/]name: an optional DNS subdomain prefix, and a name of at most 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit";

pub(super) fn labels(object: &Value, pointer: &str, rule: &'static str, out: &mut Vec<Issue>) {
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

pub(super) fn object_meta(object: &Value, pointer: &str, out: &mut Vec<Issue>) {
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
pub(super) fn selector(object: &Value, pointer: &str, out: &mut Vec<Issue>) {
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
pub(super) fn workload_selector(object: &Value, kind: &str, template: &str, out: &mut Vec<Issue>) {
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
