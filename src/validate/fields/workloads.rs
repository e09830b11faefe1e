//! Rollouts, scaling, budgets and Jobs: the counts the server takes as non-negative,
//! and the combinations of fields it refuses.

use super::quantities::{parse_quantity_value, quantity};
use super::*;

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

pub(super) fn deployment_rollout(object: &Value, out: &mut Vec<Issue>) {
    // The deadline counts from the rollout's start, so it must leave room for a pod to
    // become available at all. Unset, it is 600.
    let deadline = lookup(object, "/spec/progressDeadlineSeconds").and_then(Value::as_i64);
    let ready = lookup(object, "/spec/minReadySeconds").and_then(Value::as_i64);
    if let Some(ready) = ready {
        if deadline.unwrap_or(600) <= ready {
            let (at, which) = match deadline {
                Some(_) => ("/spec/progressDeadlineSeconds", "progressDeadlineSeconds"),
                None => (
                    "/spec/minReadySeconds",
                    "progressDeadlineSeconds (600 unless set)",
                ),
            };
            out.push(Issue::error(
                "kube-range",
                at,
                format!("{which} must be greater than minReadySeconds ({ready})"),
            ));
        }
    }
    let Some(at) = rolling_update(object, "/spec/strategy", "Recreate", true, out) else {
        return;
    };
    // Absent, each defaults to 25%.
    let unavailable = int_or_percent(object, &format!("{at}/maxUnavailable"), true, out);
    let surge = int_or_percent(object, &format!("{at}/maxSurge"), false, out);
    both_zero(&at, unavailable, surge, out);
}

pub(super) fn daemon_set_rollout(object: &Value, out: &mut Vec<Issue>) {
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

pub(super) fn stateful_set_rollout(object: &Value, out: &mut Vec<Issue>) {
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
pub(super) fn job_spec(object: &Value, spec: &str, out: &mut Vec<Issue>) {
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

pub(super) fn autoscaler(object: &Value, out: &mut Vec<Issue>) {
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
        let target = format!("{at}/{source}/target");
        one_of(
            object,
            &format!("{target}/type"),
            &["Utilization", "Value", "AverageValue"],
            out,
        );
        at_least(object, &format!("{target}/averageUtilization"), 1, out);
        for field in ["value", "averageValue"] {
            let q = format!("{target}/{field}");
            quantity(object, &q, out);
            if let Some(v) = lookup(object, &q).and_then(parse_quantity_value) {
                if v <= 0.0 {
                    out.push(Issue::error(
                        "kube-range",
                        q,
                        format!("the target {field} must be more than zero"),
                    ));
                }
            }
        }
    }
    for direction in ["scaleUp", "scaleDown"] {
        let rules = format!("/spec/behavior/{direction}");
        let window = format!("{rules}/stabilizationWindowSeconds");
        between(object, &window, (0, 3600), "an hour", out);
        one_of(
            object,
            &format!("{rules}/selectPolicy"),
            &["Max", "Min", "Disabled"],
            out,
        );
        let policies = format!("{rules}/policies");
        for i in 0..list_at(object, &policies).len() {
            let at = format!("{policies}/{i}");
            one_of(object, &format!("{at}/type"), &["Pods", "Percent"], out);
            at_least(object, &format!("{at}/value"), 1, out);
            let period = format!("{at}/periodSeconds");
            between(object, &period, (1, 1800), "30 minutes", out);
        }
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

pub(super) fn disruption_budget(object: &Value, out: &mut Vec<Issue>) {
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
