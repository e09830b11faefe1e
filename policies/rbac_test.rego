package gitops.rbac_test

import data.gitops.fixtures_test as f
import data.gitops.rbac

role(kind, rules) := {
	"apiVersion": "rbac.authorization.k8s.io/v1",
	"kind": kind,
	"metadata": {"name": "system:controller:x", "namespace": "payments-prod"},
	"rules": rules,
}

deny_for(obj) := d if {
	d := rbac.deny with input as f.validate([obj])
}

test_a_narrow_role_passes if {
	count(deny_for(role("Role", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]))) == 0
}

test_wildcard_verbs_and_resources_fire if {
	findings := deny_for(role("Role", [{"apiGroups": [""], "resources": ["*"], "verbs": ["*"]}]))
	paths := {x.path | some x in findings; x.rule == "rbac-wildcard"}
	paths == {["rules", 0, "verbs", 0], ["rules", 0, "resources", 0]}
}

test_escalating_verbs_fire if {
	findings := deny_for(role("ClusterRole", [
		{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind", "escalate"]},
		{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]},
	]))
	count({x | some x in findings; x.rule == "rbac-escalation"}) == 3
}

test_cluster_wide_secret_reads_fire if {
	findings := deny_for(role("ClusterRole", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]))
	"rbac-secrets-cluster-wide" in f.rules(findings)
}

test_cluster_wide_secret_reads_fire_for_any_group if {
	findings := deny_for(role("ClusterRole", [{"apiGroups": ["*"], "resources": ["secrets"], "verbs": ["get"]}]))
	"rbac-secrets-cluster-wide" in f.rules(findings)
}

test_secret_reads_in_a_namespace_pass if {
	findings := deny_for(role("Role", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]))
	not "rbac-secrets-cluster-wide" in f.rules(findings)
}

test_secret_writes_pass if {
	findings := deny_for(role("ClusterRole", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}]))
	not "rbac-secrets-cluster-wide" in f.rules(findings)
}

test_cluster_admin_bindings_fire if {
	binding := {
		"apiVersion": "rbac.authorization.k8s.io/v1",
		"kind": "ClusterRoleBinding",
		"metadata": {"name": "ci"},
		"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
		"subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": "ci"}],
	}
	"rbac-cluster-admin" in f.rules(deny_for(binding))
}

test_malformed_rules_do_not_fail if {
	count(deny_for(role("Role", [null, "x", {"verbs": null, "resources": "secrets"}]))) == 0
	count(deny_for(role("Role", null))) == 0
}
