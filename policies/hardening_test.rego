package gitops.hardening_test

import data.gitops.fixtures_test as f
import data.gitops.hardening

findings_for(ms) := x if {
	x := hardening.deny | hardening.warn with input as f.with_manifests(ms) with data.teams as f.teams
}

test_standard_manifests_pass if {
	findings := hardening.deny | hardening.warn with input as f.good with data.teams as f.teams
	count(findings) == 0
}

# --- resources-requests

test_resources_requests_fires_without_memory_request if {
	c := json.remove(f.container, ["resources/requests/memory"])
	findings := findings_for(f.replace_deployment(f.deployment_with_pod_patch({"containers": [c]})))
	some x in findings
	x.rule == "resources-requests"
	contains(x.message, "memory")
}

test_resources_requests_fires_on_init_container if {
	init := json.remove(object.union(f.container, {"name": "migrate"}), ["resources"])
	findings := findings_for(f.replace_deployment(f.deployment_with_pod_patch({"initContainers": [init]})))
	"resources-requests" in f.rules(findings)
}

test_resources_requests_passes if {
	findings := findings_for(f.manifests)
	not "resources-requests" in f.rules(findings)
}

# --- resources-limits

test_resources_limits_fires_without_cpu_limit if {
	c := json.remove(f.container, ["resources/limits/cpu"])
	findings := findings_for(f.replace_deployment(f.deployment_with_pod_patch({"containers": [c]})))
	some x in findings
	x.rule == "resources-limits"
	contains(x.message, "cpu")
}

test_resources_limits_passes if {
	findings := findings_for(f.manifests)
	not "resources-limits" in f.rules(findings)
}

# --- probes-required

test_probes_required_fires_without_readiness_probe if {
	c := json.remove(f.container, ["readinessProbe"])
	findings := findings_for(f.replace_deployment(f.deployment_with_pod_patch({"containers": [c]})))
	some x in findings
	x.rule == "probes-required"
	contains(x.message, "readinessProbe")
	x.field == "health.path"
}

test_probes_required_has_no_field_in_validate_mode if {
	c := json.remove(f.container, ["livenessProbe"])
	findings := hardening.deny with input as f.validate([f.deployment_with_pod_patch({"containers": [c]})])
	some x in findings
	x.rule == "probes-required"
	not x.field
}

test_probes_required_passes_for_container_without_ports if {
	c := json.remove(f.container, ["readinessProbe", "livenessProbe", "ports"])
	findings := findings_for(f.replace_deployment(f.deployment_with_pod_patch({"containers": [c]})))
	not "probes-required" in f.rules(findings)
}

test_probes_required_passes_for_jobs if {
	c := json.remove(f.container, ["readinessProbe", "livenessProbe"])
	job := {"apiVersion": "batch/v1", "kind": "Job", "metadata": f.meta("once"), "spec": {"template": {"spec": object.union(f.pod_spec, {"containers": [c]})}}}
	findings := hardening.deny with input as f.validate([job])
	not "probes-required" in f.rules(findings)
}

# --- service-account-token

test_service_account_token_fires_when_unset_and_service_account_unknown if {
	d := f.deployment_with_pod(json.remove(f.pod_spec, ["automountServiceAccountToken"]))
	findings := hardening.deny with input as f.validate([d])
	"service-account-token" in f.rules(findings)
}

test_service_account_token_fires_when_pod_says_true if {
	findings := findings_for(f.replace_deployment(f.deployment_with_pod_patch({"automountServiceAccountToken": true})))
	"service-account-token" in f.rules(findings)
}

test_service_account_token_passes_when_service_account_disables_it if {
	d := f.deployment_with_pod(json.remove(f.pod_spec, ["automountServiceAccountToken"]))
	findings := findings_for(f.replace_deployment(d))
	not "service-account-token" in f.rules(findings)
}

test_service_account_token_passes if {
	findings := findings_for(f.manifests)
	not "service-account-token" in f.rules(findings)
}

# --- service-account-default

test_service_account_default_fires_when_unset if {
	d := f.deployment_with_pod(json.remove(f.pod_spec, ["serviceAccountName"]))
	findings := findings_for(f.replace_deployment(d))
	"service-account-default" in f.rules(findings)
}

test_service_account_default_passes if {
	findings := findings_for(f.manifests)
	not "service-account-default" in f.rules(findings)
}

# --- pdb-missing

test_pdb_missing_fires_without_pdb if {
	findings := findings_for([f.service_account, f.deployment, f.network_policy])
	some x in findings
	x.rule == "pdb-missing"
	x.object == 1
}

test_pdb_missing_fires_when_pdb_selects_other_pods if {
	other := object.union(f.pdb, {"spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "other"}}}})
	findings := findings_for([f.service_account, f.deployment, other, f.network_policy])
	"pdb-missing" in f.rules(findings)
}

test_pdb_missing_is_a_warning if {
	findings := hardening.deny with input as f.with_manifests([f.service_account, f.deployment, f.network_policy])
	not "pdb-missing" in f.rules(findings)
}

test_pdb_missing_passes_for_one_replica if {
	d := object.union(f.deployment, {"spec": {"replicas": 1}})
	findings := findings_for([f.service_account, d, f.network_policy])
	not "pdb-missing" in f.rules(findings)
}

test_pdb_missing_passes_with_pdb if {
	findings := findings_for(f.manifests)
	not "pdb-missing" in f.rules(findings)
}

# --- network-policy-missing

test_network_policy_missing_fires_without_policy if {
	findings := findings_for([f.service_account, f.deployment, f.pdb])
	"network-policy-missing" in f.rules(findings)
}

test_network_policy_missing_fires_for_egress_only_policy if {
	egress_only := object.union(f.network_policy, {"spec": {"policyTypes": ["Egress"]}})
	findings := findings_for([f.service_account, f.deployment, f.pdb, egress_only])
	"network-policy-missing" in f.rules(findings)
}

test_network_policy_missing_fires_for_policy_in_other_namespace if {
	elsewhere := object.union(f.network_policy, {"metadata": {"namespace": "payments-dev"}})
	findings := findings_for([f.service_account, f.deployment, f.pdb, elsewhere])
	"network-policy-missing" in f.rules(findings)
}

test_network_policy_missing_passes_with_namespace_wide_policy if {
	deny_all := json.remove(f.network_policy, ["spec/podSelector/matchLabels"])
	findings := findings_for([f.service_account, f.deployment, f.pdb, deny_all])
	not "network-policy-missing" in f.rules(findings)
}

test_network_policy_missing_passes if {
	findings := findings_for(f.manifests)
	not "network-policy-missing" in f.rules(findings)
}
