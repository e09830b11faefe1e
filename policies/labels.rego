# Labels: every object says which app it is, who manages it and which team owns it, so
# people, cost reports and alerts can find the owner. Pods carry them too.
package gitops.labels

import data.gitops.lib

# Required on every object, and on the pods of every workload.
required := ["app.kubernetes.io/name", "app.kubernetes.io/managed-by", "team"]

# Recommended on every object.
recommended := ["app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/component", "app.kubernetes.io/part-of"]

# labels-required: the object's own labels.
deny contains f if {
	some i, obj in lib.manifests
	missing := missing_labels(lib.object_at(obj, ["metadata", "labels"]), required)
	count(missing) > 0
	f := lib.finding_at(
		"labels-required",
		sprintf("%s lacks the label(s) %v: set them in metadata.labels (the standard templates always do)", [lib.resource(obj), concat(", ", missing)]),
		i, ["metadata", "labels"], null,
	)
}

# labels-required: the labels of the pods a workload creates.
deny contains f if {
	some i, obj in lib.manifests
	labels := lib.pod_labels(obj)
	missing := missing_labels(labels, required)
	count(missing) > 0
	f := lib.finding_at(
		"labels-required",
		sprintf("the pods of %s lack the label(s) %v: set them in the pod template's metadata.labels", [lib.resource(obj), concat(", ", missing)]),
		i, pod_labels_path(obj), null,
	)
}

# labels-recommended: the rest of the Kubernetes recommended labels.
warn contains f if {
	some i, obj in lib.manifests
	missing := missing_labels(lib.object_at(obj, ["metadata", "labels"]), recommended)
	count(missing) > 0
	f := lib.finding_at(
		"labels-recommended",
		sprintf("%s lacks the recommended label(s) %v: set them in metadata.labels", [lib.resource(obj), concat(", ", missing)]),
		i, ["metadata", "labels"], null,
	)
}

pod_labels_path(obj) := ["metadata", "labels"] if {
	obj.kind == "Pod"
} else := array.concat(lib.pod_template_paths[obj.kind], ["metadata", "labels"])

missing_labels(labels, names) := [n |
	some n in names
	not non_empty_string(object.get(labels, n, null))
]

non_empty_string(v) if {
	is_string(v)
	v != ""
}
