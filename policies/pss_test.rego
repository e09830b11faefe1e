package gitops.pss_test

import data.gitops.fixtures_test as f
import data.gitops.pss

# Findings of package pss for the standard manifests with the Deployment replaced.
deny_for(d) := findings if {
	findings := pss.deny with input as f.with_manifests(f.replace_deployment(d)) with data.teams as f.teams
}

test_standard_manifests_pass if {
	count(pss.deny) == 0 with input as f.good with data.teams as f.teams
}

# --- pss-run-as-non-root

test_run_as_non_root_fires_when_container_says_false if {
	"pss-run-as-non-root" in f.rules(deny_for(f.deployment_with_container({"securityContext": {"runAsNonRoot": false}})))
}

test_run_as_non_root_fires_when_unset_everywhere if {
	c := json.remove(f.container, ["securityContext/runAsNonRoot"])
	spec := object.union(json.remove(f.pod_spec, ["securityContext/runAsNonRoot"]), {"containers": [c]})
	"pss-run-as-non-root" in f.rules(deny_for(f.deployment_with_pod(spec)))
}

test_run_as_non_root_passes_when_set_on_pod_only if {
	c := json.remove(f.container, ["securityContext/runAsNonRoot"])
	findings := deny_for(f.deployment_with_pod_patch({"containers": [c]}))
	not "pss-run-as-non-root" in f.rules(findings)
}

# --- pss-run-as-user-root

test_run_as_user_root_fires_on_container if {
	"pss-run-as-user-root" in f.rules(deny_for(f.deployment_with_container({"securityContext": {"runAsUser": 0}})))
}

test_run_as_user_root_fires_on_pod if {
	c := json.remove(f.container, ["securityContext/runAsUser"])
	d := f.deployment_with_pod_patch({"securityContext": {"runAsUser": 0}, "containers": [c]})
	"pss-run-as-user-root" in f.rules(deny_for(d))
}

test_run_as_user_root_passes_when_container_overrides_pod if {
	d := f.deployment_with_pod_patch({"securityContext": {"runAsUser": 0}})
	findings := deny_for(d)
	not "pss-run-as-user-root" in f.rules(findings)
}

# --- pss-privileged

test_privileged_fires if {
	"pss-privileged" in f.rules(deny_for(f.deployment_with_container({"securityContext": {"privileged": true}})))
}

test_privileged_passes_when_false if {
	findings := deny_for(f.deployment_with_container({"securityContext": {"privileged": false}}))
	not "pss-privileged" in f.rules(findings)
}

# --- pss-privilege-escalation

test_privilege_escalation_fires_when_true if {
	d := f.deployment_with_container({"securityContext": {"allowPrivilegeEscalation": true}})
	"pss-privilege-escalation" in f.rules(deny_for(d))
}

test_privilege_escalation_fires_when_unset if {
	c := json.remove(f.container, ["securityContext/allowPrivilegeEscalation"])
	"pss-privilege-escalation" in f.rules(deny_for(f.deployment_with_pod_patch({"containers": [c]})))
}

test_privilege_escalation_fires_on_init_container if {
	init := object.union(f.container, {"name": "migrate", "securityContext": {"allowPrivilegeEscalation": true}})
	findings := deny_for(f.deployment_with_pod_patch({"initContainers": [init]}))
	some x in findings
	x.rule == "pss-privilege-escalation"
	contains(x.message, "\"migrate\"")
}

test_privilege_escalation_passes if {
	findings := deny_for(f.deployment)
	not "pss-privilege-escalation" in f.rules(findings)
}

# --- pss-capabilities-drop-all

test_capabilities_drop_all_fires_when_dropping_some if {
	d := f.deployment_with_container({"securityContext": {"capabilities": {"drop": ["NET_RAW"]}}})
	"pss-capabilities-drop-all" in f.rules(deny_for(d))
}

test_capabilities_drop_all_fires_when_unset if {
	c := json.remove(f.container, ["securityContext/capabilities"])
	"pss-capabilities-drop-all" in f.rules(deny_for(f.deployment_with_pod_patch({"containers": [c]})))
}

test_capabilities_drop_all_passes if {
	findings := deny_for(f.deployment)
	not "pss-capabilities-drop-all" in f.rules(findings)
}

# --- pss-capabilities-add

test_capabilities_add_fires_for_sys_admin if {
	d := f.deployment_with_container({"securityContext": {"capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}})
	some x in deny_for(d)
	x.rule == "pss-capabilities-add"
	contains(x.message, "SYS_ADMIN")
}

test_capabilities_add_passes_for_net_bind_service if {
	d := f.deployment_with_container({"securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}})
	findings := deny_for(d)
	not "pss-capabilities-add" in f.rules(findings)
}

# --- pss-seccomp

test_seccomp_fires_when_unconfined_on_container if {
	d := f.deployment_with_container({"securityContext": {"seccompProfile": {"type": "Unconfined"}}})
	"pss-seccomp" in f.rules(deny_for(d))
}

test_seccomp_fires_when_unset if {
	c := json.remove(f.container, ["securityContext/seccompProfile"])
	spec := object.union(json.remove(f.pod_spec, ["securityContext/seccompProfile"]), {"containers": [c]})
	"pss-seccomp" in f.rules(deny_for(f.deployment_with_pod(spec)))
}

test_seccomp_passes_with_localhost_on_container_only if {
	c := object.union(f.container, {"securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "app.json"}}})
	spec := object.union(json.remove(f.pod_spec, ["securityContext/seccompProfile"]), {"containers": [c]})
	findings := deny_for(f.deployment_with_pod(spec))
	not "pss-seccomp" in f.rules(findings)
}

# --- pss-host-namespaces

test_host_namespaces_fires_for_host_network if {
	"pss-host-namespaces" in f.rules(deny_for(f.deployment_with_pod_patch({"hostNetwork": true})))
}

test_host_namespaces_fires_for_host_pid if {
	"pss-host-namespaces" in f.rules(deny_for(f.deployment_with_pod_patch({"hostPID": true})))
}

test_host_namespaces_passes_when_false if {
	d := f.deployment_with_pod_patch({"hostNetwork": false, "hostPID": false, "hostIPC": false})
	findings := deny_for(d)
	not "pss-host-namespaces" in f.rules(findings)
}

# --- pss-host-path

test_host_path_fires if {
	d := f.deployment_with_pod_patch({"volumes": [{"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}}]})
	some x in deny_for(d)
	x.rule == "pss-host-path"
	contains(x.message, "/var/run/docker.sock")
}

test_host_path_passes if {
	findings := deny_for(f.deployment)
	not "pss-host-path" in f.rules(findings)
}

# --- pss-volume-types

test_volume_types_fires_for_nfs if {
	d := f.deployment_with_pod_patch({"volumes": [{"name": "share", "nfs": {"server": "nfs.example.com", "path": "/"}}]})
	"pss-volume-types" in f.rules(deny_for(d))
}

test_volume_types_does_not_double_report_host_path if {
	d := f.deployment_with_pod_patch({"volumes": [{"name": "sock", "hostPath": {"path": "/run"}}]})
	findings := deny_for(d)
	not "pss-volume-types" in f.rules(findings)
}

test_volume_types_passes_for_allowed_types if {
	vols := [
		{"name": "a", "emptyDir": {}},
		{"name": "b", "configMap": {"name": "x"}},
		{"name": "c", "projected": {"sources": []}},
		{"name": "d", "persistentVolumeClaim": {"claimName": "x"}},
	]
	findings := deny_for(f.deployment_with_pod_patch({"volumes": vols}))
	not "pss-volume-types" in f.rules(findings)
}

# --- pss-host-ports

test_host_ports_fires if {
	d := f.deployment_with_container({"ports": [{"name": "http", "containerPort": 8080, "hostPort": 8080}]})
	"pss-host-ports" in f.rules(deny_for(d))
}

test_host_ports_passes_for_zero if {
	d := f.deployment_with_container({"ports": [{"name": "http", "containerPort": 8080, "hostPort": 0}]})
	findings := deny_for(d)
	not "pss-host-ports" in f.rules(findings)
}

# --- pss-read-only-root-filesystem

test_read_only_root_filesystem_fires_when_false if {
	d := f.deployment_with_container({"securityContext": {"readOnlyRootFilesystem": false}})
	"pss-read-only-root-filesystem" in f.rules(deny_for(d))
}

test_read_only_root_filesystem_fires_when_unset if {
	c := json.remove(f.container, ["securityContext/readOnlyRootFilesystem"])
	d := f.deployment_with_pod_patch({"containers": [c]})
	"pss-read-only-root-filesystem" in f.rules(deny_for(d))
}

test_read_only_root_filesystem_passes if {
	findings := deny_for(f.deployment)
	not "pss-read-only-root-filesystem" in f.rules(findings)
}

# --- every workload kind is covered, and objects without pods are ignored

test_cronjob_pod_spec_is_checked if {
	cj := {
		"apiVersion": "batch/v1",
		"kind": "CronJob",
		"metadata": f.meta("nightly-report"),
		"spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {"spec": f.pod_spec_with_privileged}}}},
	}
	findings := pss.deny with input as f.validate([cj])
	some x in findings
	x.rule == "pss-privileged"
	x.object == 0
}

test_bare_pod_is_checked if {
	pod := {"apiVersion": "v1", "kind": "Pod", "metadata": f.meta("debug"), "spec": f.pod_spec_with_privileged}
	findings := pss.deny with input as f.validate([pod])
	"pss-privileged" in f.rules(findings)
}

test_objects_without_pods_are_ignored if {
	count(pss.deny) == 0 with input as f.validate([f.service, f.ingress, {"kind": "ConfigMap", "metadata": {"name": "x"}}])
}
