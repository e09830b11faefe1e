# Hardening beyond the Pod Security Standards: resources, probes, service account
# tokens, and the companions a workload needs (a PodDisruptionBudget, a NetworkPolicy).
package gitops.hardening

import data.gitops.lib
import data.gitops.lib.all_containers
import data.gitops.lib.manifests
import data.gitops.lib.pods
import data.gitops.lib.values

# resources-requests: every container (and init container) requests CPU and memory, so
# the scheduler places it on a node that has room for it.
deny contains f if {
	some e in all_containers
	sized(e)
	i := e.i
	obj := e.obj
	some r in ["cpu", "memory"]
	not has_quantity(e.container, "requests", r)
	f := lib.finding_at(
		"resources-requests",
		sprintf("%s has no %s request: set resources.requests.%s (the standard templates take it from `size`)", [lib.container_subject(obj, e.container), r, r]),
		i, array.concat(e.path, ["resources", "requests", r]), null,
	)
}

# resources-limits: every container (and init container) has CPU and memory limits, so
# one app cannot starve its neighbours on the node.
deny contains f if {
	some e in all_containers
	sized(e)
	i := e.i
	obj := e.obj
	some r in ["cpu", "memory"]
	not has_quantity(e.container, "limits", r)
	f := lib.finding_at(
		"resources-limits",
		sprintf("%s has no %s limit: set resources.limits.%s (the standard templates take it from `size`)", [lib.container_subject(obj, e.container), r, r]),
		i, array.concat(e.path, ["resources", "limits", r]), null,
	)
}

# Ephemeral (debug) containers cannot have resources, so they are not checked.
sized(e) if e.path[count(e.path) - 2] != "ephemeralContainers"

has_quantity(c, kind, r) if {
	q := lib.object_at(c, ["resources", kind])[r]
	q != null
	q != ""
}

# probes-required: a long-running container that serves a port has a readiness probe
# (no traffic before it is ready) and a liveness probe (restarted when it hangs).
probed_kinds := {"Deployment", "StatefulSet", "DaemonSet"}

deny contains f if {
	some e in all_containers
	probed_kinds[e.obj.kind]
	i := e.i
	obj := e.obj
	e.path[count(e.path) - 2] == "containers"
	count(lib.array_at(e.container, ["ports"])) > 0
	some probe in ["readinessProbe", "livenessProbe"]
	lib.object_at(e.container, [probe]) == {}
	f := lib.finding_at(
		"probes-required",
		sprintf("%s serves a port but has no %s: add one (the standard templates probe health.path on the named port)", [lib.container_subject(obj, e.container), probe]),
		i, array.concat(e.path, [probe]), health_field(obj),
	)
}

# A missing probe on the app's own rendered workload points at `health`.
health_field(obj) := "health.path" if {
	values.health
	lib.name(obj) == values.app
} else := null

# service-account-token: pods get no Kubernetes API token, unless their own
# ServiceAccount (in the same manifests) has automountServiceAccountToken: false and the
# pod does not override it.
deny contains f if {
	some p in pods
	i := p.i
	obj := p.obj
	spec := p.spec
	not spec.automountServiceAccountToken == false
	not token_disabled_by_service_account(obj, spec)
	f := lib.finding_at(
		"service-account-token",
		sprintf("%s mounts a Kubernetes API token into its pods (automountServiceAccountToken is %v): set automountServiceAccountToken: false on the pod spec", [lib.resource(obj), object.get(spec, "automountServiceAccountToken", "unset")]),
		i, array.concat(p.path, ["automountServiceAccountToken"]), null,
	)
}

token_disabled_by_service_account(obj, spec) if {
	not "automountServiceAccountToken" in object.keys(spec)
	some sa in service_accounts_in[lib.namespace(obj)]
	lib.name(sa) == service_account_name(spec)
	sa.automountServiceAccountToken == false
}

# Companions, gathered once per evaluation by namespace, rather than searched for among
# every manifest for every workload (`validate` evaluates hundreds of objects at once).
service_accounts_in[ns] contains o if {
	some o in manifests
	o.kind == "ServiceAccount"
	ns := lib.namespace(o)
}

pdbs_in[ns] contains o if {
	some o in manifests
	o.kind == "PodDisruptionBudget"
	ns := lib.namespace(o)
}

network_policies_in[ns] contains o if {
	some o in manifests
	o.kind == "NetworkPolicy"
	ns := lib.namespace(o)
}

service_account_name(spec) := n if {
	n := spec.serviceAccountName
	is_string(n)
	n != ""
} else := "default"

# service-account-default: a pod runs as its app's own ServiceAccount, never `default`,
# so RBAC granted to one app never leaks to every pod of the namespace.
warn contains f if {
	some p in pods
	i := p.i
	obj := p.obj
	service_account_name(p.spec) == "default"
	f := lib.finding_at(
		"service-account-default",
		sprintf("%s runs as the namespace's default ServiceAccount: create a ServiceAccount for the app and set serviceAccountName", [lib.resource(obj)]),
		i, array.concat(p.path, ["serviceAccountName"]), null,
	)
}

# pdb-missing: a workload with more than one replica has a PodDisruptionBudget, so a
# node drain or a cluster upgrade does not evict all of its pods at once.
replicated_kinds := {"Deployment", "StatefulSet"}

warn contains f if {
	some i, obj in manifests
	replicated_kinds[obj.kind]
	replicas := lib.get(obj, ["spec", "replicas"], 1)
	is_number(replicas)
	replicas > 1
	labels := lib.pod_labels(obj)
	not has_pdb(obj, labels)
	f := lib.finding_at(
		"pdb-missing",
		sprintf("%s runs %v replicas but no PodDisruptionBudget selects its pods: add one with maxUnavailable: 1", [lib.resource(obj), replicas]),
		i, ["spec", "replicas"], null,
	)
}

# A budget without a selector selects no pods (policy/v1); `{}` selects them all.
has_pdb(obj, labels) if {
	some pdb in pdbs_in[lib.namespace(obj)]
	lib.selects(lib.get(pdb, ["spec", "selector"], null), labels)
}

# network-policy-missing: every workload's pods are selected by a NetworkPolicy that
# governs their ingress, so they are not open to every pod of the cluster.
warn contains f if {
	some p in pods
	i := p.i
	obj := p.obj
	labels := lib.pod_labels(obj)
	not has_network_policy(obj, labels)
	f := lib.finding_at(
		"network-policy-missing",
		sprintf("no NetworkPolicy restricts ingress to the pods of %s: add one that selects them (the standard templates render one per app)", [lib.resource(obj)]),
		i, ["metadata", "name"], null,
	)
}

has_network_policy(obj, labels) if {
	some np in network_policies_in[lib.namespace(obj)]
	lib.selects(lib.get(np, ["spec", "podSelector"], {}), labels)
	governs_ingress(np)
}

# policyTypes defaults to ["Ingress"] (plus Egress when egress rules exist).
governs_ingress(np) if not lib.get(np, ["spec", "policyTypes"], null)

governs_ingress(np) if "Ingress" in lib.array_at(np, ["spec", "policyTypes"])
