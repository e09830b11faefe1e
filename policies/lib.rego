# Helpers shared by the platform's policies. This package has no deny or warn rules
# of its own.
#
# The same policies run in two modes:
#   - check/render/deploy: input.values holds the effective values, input.context the
#     app, env and team, and input.manifests what the templates rendered;
#   - validate: input.manifests holds Kubernetes objects from any source, input.values
#     is {} and the context fields may be null.
# So manifest rules read input.manifests only, and rules about values or context use
# the helpers below, which are undefined (the rule does not fire) when those are absent.
package gitops.lib

# The manifests, always an array.
manifests := m if {
	m := input.manifests
	is_array(m)
} else := []

# The effective values, always an object ({} in validate mode).
values := v if {
	v := input.values
	is_object(v)
} else := {}

# A context field (app, env, team, source_repo, actor) when it is a non-empty string;
# undefined otherwise.
context(key) := v if {
	v := input.context[key]
	is_string(v)
	v != ""
}

# A values field when it is a non-empty string; undefined otherwise.
value_string(key) := v if {
	v := values[key]
	is_string(v)
	v != ""
}

# The team and app being deployed: the context's, else the values'. Undefined in
# validate mode.
team := t if {
	t := context("team")
} else := t if {
	t := value_string("team")
}

app := a if {
	a := context("app")
} else := a if {
	a := value_string("app")
}

# The teams registry (policies/teams.yaml), {} when it is not loaded.
teams := t if {
	t := data.teams
	is_object(t)
} else := {}

# The team an object belongs to: the deployment's team, else the object's own `team`
# label (validate mode). Undefined when neither is known.
object_team(obj) := t if {
	t := team
} else := t if {
	t := obj.metadata.labels.team
	is_string(t)
	t != ""
}

# "Kind/name", the `resource` of a finding.
resource(obj) := sprintf("%s/%s", [kind(obj), name(obj)])

kind(obj) := k if {
	k := obj.kind
	is_string(k)
} else := "Unknown"

name(obj) := n if {
	n := obj.metadata.name
	is_string(n)
} else := "unnamed"

# The namespace an object declares, "" when none.
namespace(obj) := ns if {
	ns := obj.metadata.namespace
	is_string(ns)
} else := ""

# Findings. `field` is a dotted values path or null; `obj` a Kubernetes object.
finding(rule, message, obj, field) := with_field({"rule": rule, "message": message, "resource": resource(obj)}, field)

values_finding(rule, message, field) := with_field({"rule": rule, "message": message}, field)

with_field(base, field) := object.union(base, {"field": field}) if {
	is_string(field)
} else := base

# Where each workload kind keeps its pod template.
pod_template_paths := {
	"Deployment": ["spec", "template"],
	"StatefulSet": ["spec", "template"],
	"DaemonSet": ["spec", "template"],
	"ReplicaSet": ["spec", "template"],
	"ReplicationController": ["spec", "template"],
	"Job": ["spec", "template"],
	"CronJob": ["spec", "jobTemplate", "spec", "template"],
}

# The pod spec of a Pod or of a workload's pod template; undefined for other kinds.
pod_spec(obj) := spec if {
	obj.kind == "Pod"
	spec := obj.spec
	is_object(spec)
} else := spec if {
	spec := object.get(obj, array.concat(pod_template_paths[obj.kind], ["spec"]), null)
	is_object(spec)
}

# The labels a pod gets ({} when none): a Pod's own, or its workload's pod template's.
# Undefined for other kinds.
pod_labels(obj) := labels if {
	obj.kind == "Pod"
	labels := object.get(obj, ["metadata", "labels"], {})
} else := labels if {
	path := array.concat(pod_template_paths[obj.kind], ["metadata", "labels"])
	labels := object.get(obj, path, {})
}

# Every container of a pod spec: containers, initContainers and ephemeralContainers.
containers(spec) := [c |
	some field in ["containers", "initContainers", "ephemeralContainers"]
	some c in object.get(spec, field, [])
	is_object(c)
]

# A container's name for messages.
container_name(c) := n if {
	n := c.name
	is_string(n)
} else := "unnamed"

# "container \"x\" of Deployment/y", the subject of most pod messages.
container_subject(obj, c) := sprintf("container %q of %s", [container_name(c), resource(obj)])

# A container's effective securityContext setting: the container's own, else the pod's.
effective(spec, c, key) := v if {
	v := c.securityContext[key]
} else := v if {
	v := spec.securityContext[key]
}

# Image references: {"repository", "tag", "digest"}, tag and digest "" when absent.
image_parts(ref) := {"repository": repo, "tag": tag, "digest": digest} if {
	at := split(ref, "@")
	digest := digest_of(at)
	path := split(at[0], "/")
	last := split(path[count(path) - 1], ":")
	tag := tag_of(last)
	repo := concat("/", array.concat(array.slice(path, 0, count(path) - 1), [last[0]]))
}

digest_of(at) := at[1] if {
	count(at) > 1
} else := ""

tag_of(last) := last[1] if {
	count(last) > 1
} else := ""

# A repository in canonical form: Docker Hub's short names get their registry, so
# `nginx` and `docker.io/library/nginx` compare equal.
canonical_repository(repo) := repo if {
	parts := split(repo, "/")
	count(parts) > 1
	registry_host(parts[0])
} else := concat("/", ["docker.io", repo]) if {
	count(split(repo, "/")) > 1
} else := concat("/", ["docker.io", "library", repo])

registry_host(h) if contains(h, ".")

registry_host(h) if contains(h, ":")

registry_host(h) if h == "localhost"

# Namespaced objects: every kind except these cluster-scoped ones.
cluster_scoped_kinds := {
	"APIService", "CertificateSigningRequest", "ClusterRole", "ClusterRoleBinding",
	"ComponentStatus", "CSIDriver", "CSINode", "CustomResourceDefinition",
	"FlowSchema", "IngressClass", "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding",
	"MutatingWebhookConfiguration", "Namespace", "Node", "PersistentVolume", "PriorityClass",
	"PriorityLevelConfiguration", "RuntimeClass", "StorageClass", "ValidatingAdmissionPolicy",
	"ValidatingAdmissionPolicyBinding", "ValidatingWebhookConfiguration", "VolumeAttachment",
}

namespaced(obj) if not cluster_scoped_kinds[kind(obj)]

# Whether a label selector's matchLabels all appear in `labels`. An empty selector
# selects everything.
selects(selector, labels) if {
	match := object.get(selector, "matchLabels", {})
	every k, v in match {
		labels[k] == v
	}
}
