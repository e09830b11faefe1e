package gitops.labels_test

import data.gitops.fixtures_test as f
import data.gitops.labels

findings(ms) := x if {
	x := labels.deny | labels.warn with input as f.validate(ms)
}

test_standard_manifests_pass if {
	count(findings(f.manifests)) == 0
}

# --- labels-required

test_labels_required_fires_without_team_label if {
	sa := json.remove(f.service_account, ["metadata/labels/team"])
	some x in findings([sa])
	x.rule == "labels-required"
	x.object == 0
	contains(x.message, "team")
}

test_labels_required_fires_without_any_labels if {
	some x in findings([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}}])
	x.rule == "labels-required"
	contains(x.message, "app.kubernetes.io/name, app.kubernetes.io/managed-by, team")
}

test_labels_required_fires_for_empty_value if {
	sa := object.union(f.service_account, {"metadata": {"labels": {"app.kubernetes.io/managed-by": ""}}})
	x := findings([sa])
	"labels-required" in f.rules(x)
}

test_labels_required_fires_for_unlabelled_pods if {
	d := json.remove(f.deployment, ["spec/template/metadata/labels/team"])
	some x in findings([d])
	x.rule == "labels-required"
	contains(x.message, "the pods of Deployment/payments-api")
}

test_labels_required_passes if {
	x := findings(f.manifests)
	not "labels-required" in f.rules(x)
}

# --- labels-recommended

test_labels_recommended_fires if {
	sa := object.union(json.remove(f.service_account, ["metadata/labels"]), {"metadata": {"labels": object.remove(f.labels, ["app.kubernetes.io/version"])}})
	some x in findings([sa])
	x.rule == "labels-recommended"
	contains(x.message, "app.kubernetes.io/version")
}

test_labels_recommended_is_a_warning if {
	sa := object.union(json.remove(f.service_account, ["metadata/labels"]), {"metadata": {"labels": object.remove(f.labels, ["app.kubernetes.io/version"])}})
	x := labels.deny with input as f.validate([sa])
	not "labels-recommended" in f.rules(x)
}

test_labels_recommended_passes if {
	x := findings(f.manifests)
	not "labels-recommended" in f.rules(x)
}

test_labels_required_fires_for_unlabelled_bare_pod if {
	pod := {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug", "namespace": "payments-prod"}, "spec": f.pod_spec}
	some x in findings([pod])
	x.rule == "labels-required"
	contains(x.message, "the pods of Pod/debug")
}

# Labels of the wrong shape, or values that are not non-empty strings, count as missing;
# nothing fails to evaluate.
test_labels_of_the_wrong_shape_are_missing if {
	cm := {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "labels": "team=payments"}}
	some x in findings([cm])
	x.rule == "labels-required"
	contains(x.message, "app.kubernetes.io/name, app.kubernetes.io/managed-by, team")
}

test_label_values_that_are_not_strings_are_missing if {
	labels := object.union(f.labels, {"team": true, "app.kubernetes.io/name": 1})
	cm := {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "labels": labels}}
	some x in findings([cm])
	x.rule == "labels-required"
	contains(x.message, "lacks the label(s) app.kubernetes.io/name, team:")
}

test_pod_labels_of_the_wrong_shape_are_missing if {
	d := object.union(f.deployment, {"spec": {"template": {"metadata": {"labels": ["team"]}}}})
	some x in findings([d])
	x.rule == "labels-required"
	contains(x.message, "the pods of Deployment/payments-api")
}
