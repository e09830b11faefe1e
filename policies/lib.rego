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
#
# Speed, for policy authors (regorus, measured per evaluation of one app's manifests):
#   - Import the rules of this package by their own path (`import
#     data.gitops.lib.manifests`, then `manifests`). Through the package alias
#     (`lib.manifests`) regorus evaluates every rule and function of this package first:
#     about 100 µs per evaluation, a twentieth of all the policies. Functions are fine
#     through the alias (`lib.resource(obj)`).
#   - A function call costs several microseconds; a lookup in a constant object or a
#     field of an entry gathered once (`pods`, `all_containers`) a fraction of that. Test
#     the cheap conditions (the kind) before calling a function on every object.
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
	n != ""
} else := n if {
	n := obj.metadata.generateName
	is_string(n)
	n != ""
} else := "unnamed"

# The namespace an object declares, "" when none.
namespace(obj) := ns if {
	ns := obj.metadata.namespace
	is_string(ns)
} else := ""

# Findings. `field` is a dotted values path or null; `obj` a Kubernetes object.
finding(rule, message, obj, field) := with_field({"rule": rule, "message": message, "resource": resource(obj)}, field)

# A finding on the object input.manifests[i], at `path` inside it (an array of keys and
# indices from the object's root, [] for the object itself). gitops-render attaches it
# to that very object, in its file, at the line of the deepest part of `path` that
# exists, so a finding says where to look even when the field is missing. `field`, as
# above, points at the values file instead when a value the team chose is the cause.
# gitops-render names the object ("Kind/name", as `resource` does) from the index
# itself: built here it was a tenth of what a finding costs to make.
finding_at(rule, message, i, path, field) := {"rule": rule, "message": message, "object": i, "path": path, "field": field} if {
	is_string(field)
} else := {"rule": rule, "message": message, "object": i, "path": path}

values_finding(rule, message, field) := with_field({"rule": rule, "message": message}, field)

with_field(base, field) := object.union(base, {"field": field}) if {
	is_string(field)
} else := base

# Reading manifests from anywhere means reading any shape: `volumes: null` (as `kubectl
# create --dry-run` writes it), a scalar where a list belongs. These return the value at
# `path` under `x` when it has the expected type, else an empty one, so no rule ever
# iterates a null or a string. (The API schema check reports the wrong shape itself.)
array_at(x, path) := a if {
	is_object(x)
	a := object.get(x, path, [])
	is_array(a)
} else := []

object_at(x, path) := o if {
	is_object(x)
	o := object.get(x, path, {})
	is_object(o)
} else := {}

# The value at `path` under `x`, or `fallback` when any step is missing or not an object.
get(x, path, fallback) := v if {
	is_object(x)
	v := object.get(x, path, fallback)
} else := fallback

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

# Where a Pod or each workload kind keeps its pod spec. A lookup in a constant object
# costs a fraction of a function call, and these are asked of every object.
pod_spec_paths := {
	"Pod": ["spec"],
	"Deployment": ["spec", "template", "spec"],
	"StatefulSet": ["spec", "template", "spec"],
	"DaemonSet": ["spec", "template", "spec"],
	"ReplicaSet": ["spec", "template", "spec"],
	"ReplicationController": ["spec", "template", "spec"],
	"Job": ["spec", "template", "spec"],
	"CronJob": ["spec", "jobTemplate", "spec", "template", "spec"],
}

# The path of the pod spec in a Pod or a workload; undefined for other kinds.
pod_spec_path(obj) := pod_spec_paths[obj.kind]

# The pod spec of a Pod or of a workload's pod template; undefined for other kinds.
pod_spec(obj) := spec if {
	spec := object.get(obj, pod_spec_paths[obj.kind], null)
	is_object(spec)
}

# The labels a pod gets ({} when none): a Pod's own, or its workload's pod template's.
# Undefined for other kinds.
pod_labels(obj) := labels if {
	obj.kind == "Pod"
	labels := object_at(obj, ["metadata", "labels"])
} else := labels if {
	path := array.concat(pod_template_paths[obj.kind], ["metadata", "labels"])
	labels := object_at(obj, path)
}

# Every container of a pod spec: containers, initContainers and ephemeralContainers.
containers(spec) := [c |
	some field in ["containers", "initContainers", "ephemeralContainers"]
	some c in array_at(spec, [field])
	is_object(c)
]

# Every container of an object's pod spec with its path in the object:
# [{"container": c, "path": ["spec", "template", "spec", "containers", 0]}, ...].
pod_containers(obj) := [{"container": c, "path": array.concat(pod_spec_path(obj), [field, j])} |
	spec := pod_spec(obj)
	some field in ["containers", "initContainers", "ephemeralContainers"]
	some j, c in array_at(spec, [field])
	is_object(c)
]

# Every pod spec of the manifests, gathered once per evaluation (rules iterate this list
# instead of asking every object for its pod spec again):
# [{"i": index in manifests, "obj": object, "spec": pod spec, "path": its path}].
pods := [{"i": i, "obj": obj, "spec": spec, "path": path} |
	some i, obj in manifests
	path := pod_spec_paths[obj.kind]
	spec := object.get(obj, path, null)
	is_object(spec)
]

# Every container of every manifest, gathered once per evaluation:
# [{"i": index in manifests, "obj": object, "spec": pod spec, "container": c, "path": [...],
#   "security": its effective securityContext}], where "security" holds, for every key,
# what `effective` gives: the container's own setting, else the pod's.
all_containers := [{"i": p.i, "obj": p.obj, "spec": p.spec, "container": c, "path": array.concat(p.path, [field, j]), "security": security} |
	some p in pods
	pod_security := object_at(p.spec, ["securityContext"])
	some field in ["containers", "initContainers", "ephemeralContainers"]
	some j, c in array_at(p.spec, [field])
	is_object(c)
	own := object_at(c, ["securityContext"])
	# Whole settings, never merged inside: the pod's only where the container has none.
	security := object.union(object.remove(pod_security, object.keys(own)), own)
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
	v := object_at(c, ["securityContext"])[key]
} else := v if {
	v := object_at(spec, ["securityContext"])[key]
}

# Where a container's effective securityContext setting is written (or would be): the
# container's, when it sets it or the pod does not.
effective_path(spec, e, key) := array.concat(e.path, ["securityContext", key]) if {
	object_at(e.container, ["securityContext"])[key]
} else := path if {
	object_at(spec, ["securityContext"])[key]
	path := array.concat(array.slice(e.path, 0, count(e.path) - 2), ["securityContext", key])
} else := array.concat(e.path, ["securityContext", key])

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

# Where objects live. gitops-render passes the scope of every kind it knows (the
# release's built-in kinds, and custom resources whose CustomResourceDefinition it was
# given or found among the manifests) as input.scopes: {"<group>/<Kind>": "Namespaced" |
# "Cluster"}. Without it (policy unit tests, other callers) the built-in list below
# decides; a kind known to neither is of unknown scope.
cluster_scoped_kinds := {
	"APIService", "CertificateSigningRequest", "ClusterRole", "ClusterRoleBinding",
	"ComponentStatus", "CSIDriver", "CSINode", "CustomResourceDefinition",
	"FlowSchema", "IngressClass", "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding",
	"MutatingWebhookConfiguration", "Namespace", "Node", "PersistentVolume", "PriorityClass",
	"PriorityLevelConfiguration", "RuntimeClass", "StorageClass", "ValidatingAdmissionPolicy",
	"ValidatingAdmissionPolicyBinding", "ValidatingWebhookConfiguration", "VolumeAttachment",
	"ClusterTrustBundle", "DeviceClass", "ResourceSlice", "DeviceTaintRule", "IPAddress",
	"ServiceCIDR", "StorageVersion", "StorageVersionMigration", "VolumeAttributesClass",
}

# "<group>/<Kind>" of an object: "apps/Deployment", "/ConfigMap" for the core group.
group_kind(obj) := sprintf("%s/%s", [group(obj), kind(obj)])

group(obj) := g if {
	parts := split(obj.apiVersion, "/")
	count(parts) == 2
	g := parts[0]
} else := ""

scope(obj) := s if {
	s := input.scopes[group_kind(obj)]
	is_string(s)
} else := "Cluster" if {
	not is_object(input.scopes)
	cluster_scoped_kinds[kind(obj)]
} else := "Namespaced" if {
	not is_object(input.scopes)
}

# Namespaced objects: every kind not known to be cluster-scoped.
namespaced(obj) if not scope(obj) == "Cluster"

# Objects known to be namespaced; a custom resource of unknown scope is not.
known_namespaced(obj) if scope(obj) == "Namespaced"

# Whether a label selector selects `labels`: every matchLabels entry and every
# matchExpressions requirement (In, NotIn, Exists, DoesNotExist) holds. An empty
# selector selects everything; a requirement with an unknown operator nothing.
selects(selector, labels) if {
	is_object(selector)
	every k, v in object_at(selector, ["matchLabels"]) {
		labels[k] == v
	}
	every e in array_at(selector, ["matchExpressions"]) {
		requirement_holds(e, labels)
	}
}

requirement_holds(e, labels) if {
	e.operator == "In"
	labels[e.key] in array_at(e, ["values"])
}

requirement_holds(e, labels) if {
	e.operator == "NotIn"
	not labels[e.key] in array_at(e, ["values"])
}

requirement_holds(e, labels) if {
	e.operator == "Exists"
	labels[e.key]
}

requirement_holds(e, labels) if {
	e.operator == "DoesNotExist"
	not e.key in object.keys(labels)
}
