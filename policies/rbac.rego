# RBAC: what a Role or ClusterRole grants, and to whom it is bound. The standard
# templates render no RBAC (an app gets no API token at all); these rules are for the
# manifests `validate` sees from elsewhere: Helm charts, operators, hand-written roles.
package gitops.rbac

import data.gitops.lib
import data.gitops.lib.manifests

role_kinds := {"Role", "ClusterRole"}

# Every rule of every Role and ClusterRole, gathered once per evaluation:
# [{"i": index in manifests, "obj": the role, "rule": r, "j": its index}, ...].
role_rules := [{"i": i, "obj": obj, "rule": r, "j": j} |
	some i, obj in manifests
	role_kinds[obj.kind]
	some j, r in lib.array_at(obj, ["rules"])
	is_object(r)
]

# rbac-wildcard: no `*` verb or resource. A wildcard grants every verb (or resource)
# Kubernetes has now and every one added later, custom resources included.
deny contains f if {
	some e in role_rules
	i := e.i
	obj := e.obj
	some field in ["verbs", "resources"]
	some k, v in lib.array_at(e.rule, [field])
	v == "*"
	f := lib.finding_at(
		"rbac-wildcard",
		sprintf("%s grants `*` in rules[%d].%s, which covers every %s now and in future releases: list the ones needed", [lib.resource(obj), e.j, field, trim_suffix(field, "s")]),
		i, ["rules", e.j, field, k], null,
	)
}

# rbac-escalation: no bind, escalate or impersonate. Each lets the holder act beyond
# its own permissions: bind and escalate grant roles it does not hold, impersonate acts
# as another user, group or ServiceAccount.
escalating_verbs := {"bind", "escalate", "impersonate"}

deny contains f if {
	some e in role_rules
	i := e.i
	obj := e.obj
	some k, v in lib.array_at(e.rule, ["verbs"])
	escalating_verbs[v]
	f := lib.finding_at(
		"rbac-escalation",
		sprintf("%s grants the verb %q, which lets its holder gain permissions it does not have: remove it, or give it to a dedicated, audited role", [lib.resource(obj), v]),
		i, ["rules", e.j, "verbs", k], null,
	)
}

# rbac-secrets-cluster-wide: no ClusterRole reads Secrets. Bound anywhere, it reads
# every Secret of every namespace: credentials of other teams and of the cluster.
reading_verbs := {"get", "list", "watch", "*"}

deny contains f if {
	some e in role_rules
	e.obj.kind == "ClusterRole"
	i := e.i
	obj := e.obj
	core_group(e.rule)
	"secrets" in lib.array_at(e.rule, ["resources"])
	some k, v in lib.array_at(e.rule, ["verbs"])
	reading_verbs[v]
	f := lib.finding_at(
		"rbac-secrets-cluster-wide",
		sprintf("%s lets its holders %s Secrets in every namespace: use a Role in the namespace that needs them, limited by resourceNames", [lib.resource(obj), v]),
		i, ["rules", e.j, "verbs", k], null,
	)
}

core_group(r) if "" in lib.array_at(r, ["apiGroups"])

core_group(r) if "*" in lib.array_at(r, ["apiGroups"])

# rbac-cluster-admin: nothing is bound to cluster-admin, the role that can do anything
# anywhere.
deny contains f if {
	some i, obj in manifests
	obj.kind in {"RoleBinding", "ClusterRoleBinding"}
	lib.get(obj, ["roleRef", "kind"], "") == "ClusterRole"
	lib.get(obj, ["roleRef", "name"], "") == "cluster-admin"
	f := lib.finding_at(
		"rbac-cluster-admin",
		sprintf("%s binds cluster-admin, which can do anything in the cluster: bind a role with only the permissions needed", [lib.resource(obj)]),
		i, ["roleRef", "name"], null,
	)
}
