# Labels: every object says which app it is, who manages it and which team owns it, so
# people, cost reports and alerts can find the owner. Pods carry them too.
package gitops.labels

import data.gitops.lib
import data.gitops.lib.manifests
import data.gitops.lib.pod_spec_paths
import data.gitops.lib.pod_template_paths

# Required on every object, and on the pods of every workload.
required := ["app.kubernetes.io/name", "app.kubernetes.io/managed-by", "team"]

# Recommended on every object.
recommended := ["app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/component", "app.kubernetes.io/part-of"]

# Each object's missing labels, found once per evaluation for the rules on its own labels:
# [{"i": index in manifests, "obj": object, "required": [...], "recommended": [...]}].
#
# `good` is the set of the wanted labels whose value is a non-empty string. Rego orders
# values of different types by type (null, booleans, numbers, strings, arrays, sets,
# objects), so the values above "" and below [] are exactly the non-empty strings: two
# comparisons instead of a builtin call. It is spelled out here and in the pod rule
# below, not called: a function call costs regorus about as much as the rest of an
# object's label checks (BENCHMARKS.md, validate). `labels[n]` of a non-object is
# undefined, so labels of the wrong shape count as missing. A manifest that is not an
# object is wrapped in one: object.get refuses anything else, and the rules still say
# that it lacks its labels.
object_labels := [{"i": i, "obj": obj, "required": [n | some n in required; not good[n]], "recommended": [n | some n in recommended; not good[n]]} |
	some i, obj in manifests
	labels := object.get({"obj": obj}, ["obj", "metadata", "labels"], {})
	good := {n | some n in wanted; v := labels[n]; "" < v; v < []}
]

wanted := array.concat(required, recommended)

# labels-required: the object's own labels.
deny contains f if {
	some e in object_labels
	count(e.required) > 0
	f := lib.finding_at(
		"labels-required",
		sprintf("%s lacks the label(s) %v: set them in metadata.labels (the standard templates always do)", [lib.resource(e.obj), concat(", ", e.required)]),
		e.i, ["metadata", "labels"], null,
	)
}

# labels-required: the labels of the pods a workload creates.
deny contains f if {
	some i, obj in manifests
	spec_path := pod_spec_paths[obj.kind]
	# The pod template's labels (a Pod's own): beside the spec its path ends in.
	labels := object.get(obj, array.concat(array.slice(spec_path, 0, count(spec_path) - 1), ["metadata", "labels"]), {})
	good := {n | some n in required; v := labels[n]; "" < v; v < []}
	missing := [n | some n in required; not good[n]]
	count(missing) > 0
	f := lib.finding_at(
		"labels-required",
		sprintf("the pods of %s lack the label(s) %v: set them in the pod template's metadata.labels", [lib.resource(obj), concat(", ", missing)]),
		i, pod_labels_path(obj), null,
	)
}

# labels-recommended: the rest of the Kubernetes recommended labels.
warn contains f if {
	some e in object_labels
	count(e.recommended) > 0
	f := lib.finding_at(
		"labels-recommended",
		sprintf("%s lacks the recommended label(s) %v: set them in metadata.labels", [lib.resource(e.obj), concat(", ", e.recommended)]),
		e.i, ["metadata", "labels"], null,
	)
}

pod_labels_path(obj) := ["metadata", "labels"] if {
	obj.kind == "Pod"
} else := array.concat(pod_template_paths[obj.kind], ["metadata", "labels"])
