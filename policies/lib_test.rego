package gitops.lib_test

import data.gitops.fixtures_test as f
import data.gitops.hardening
import data.gitops.images
import data.gitops.ingress
import data.gitops.labels
import data.gitops.lib
import data.gitops.pss
import data.gitops.rbac
import data.gitops.tenancy

# --- selectors

test_match_labels_select if {
	lib.selects({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"})
	not lib.selects({"matchLabels": {"a": "1"}}, {"a": "2"})
}

test_an_empty_selector_selects_everything if {
	lib.selects({}, {"a": "1"})
}

test_a_missing_selector_selects_nothing if {
	not lib.selects(null, {"a": "1"})
}

test_match_expressions_select if {
	labels := {"tier": "web", "env": "prod"}
	lib.selects({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]}, labels)
	not lib.selects({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["db"]}]}, labels)
	lib.selects({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]}, labels)
	not lib.selects({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]}, labels)
	lib.selects({"matchExpressions": [{"key": "env", "operator": "Exists"}]}, labels)
	not lib.selects({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, labels)
	lib.selects({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, labels)
	not lib.selects({"matchExpressions": [{"key": "env", "operator": "DoesNotExist"}]}, labels)
	not lib.selects({"matchExpressions": [{"key": "env", "operator": "Near"}]}, labels)
}

test_match_labels_and_expressions_must_both_hold if {
	sel := {"matchLabels": {"env": "prod"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["db"]}]}
	not lib.selects(sel, {"env": "prod", "tier": "web"})
	lib.selects(sel, {"env": "prod", "tier": "db"})
}

# --- scopes

test_scopes_come_from_the_input_when_given if {
	cr := {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
	lib.known_namespaced(cr) with input as {"scopes": {"example.com/Widget": "Namespaced"}}
	not lib.namespaced(cr) with input as {"scopes": {"example.com/Widget": "Cluster"}}
	not lib.known_namespaced(cr) with input as {"scopes": {}}
}

test_scopes_default_to_the_built_in_list if {
	lib.namespaced({"apiVersion": "v1", "kind": "ConfigMap"}) with input as {}
	not lib.namespaced({"apiVersion": "v1", "kind": "Namespace"}) with input as {}
	lib.group_kind({"apiVersion": "apps/v1", "kind": "Deployment"}) == "apps/Deployment"
	lib.group_kind({"apiVersion": "v1", "kind": "Pod"}) == "/Pod"
}

# --- findings

test_finding_names_the_resource if {
	x := lib.finding("r", "m", f.deployment, null)
	x == {"rule": "r", "message": "m", "resource": "Deployment/payments-api"}
	lib.finding("r", "m", {}, "app").field == "app"
	lib.finding("r", "m", {"kind": 3, "metadata": {"name": 4}}, null).resource == "Unknown/unnamed"
}

test_finding_at_names_the_object_and_path if {
	x := lib.finding_at("r", "m", 1, ["spec"], null) with input as f.validate([f.service, f.deployment])
	x.object == 1
	x.path == ["spec"]
	not x.resource
	not x.field
}

test_finding_at_keeps_a_values_field if {
	x := lib.finding_at("r", "m", 0, [], "replicas") with input as f.validate([f.service])
	x.field == "replicas"
	x.object == 0
}

test_effective_path_is_where_the_setting_is_written if {
	e := {"container": {"securityContext": {"runAsUser": 1}}, "path": ["spec", "containers", 0]}
	lib.effective_path({}, e, "runAsUser") == ["spec", "containers", 0, "securityContext", "runAsUser"]
	e2 := {"container": {}, "path": ["spec", "containers", 0]}
	lib.effective_path({"securityContext": {"runAsUser": 1}}, e2, "runAsUser") == ["spec", "securityContext", "runAsUser"]
	lib.effective_path({}, e2, "runAsUser") == ["spec", "containers", 0, "securityContext", "runAsUser"]
}

test_shapes_helpers_return_empty_values if {
	lib.array_at({"a": null}, ["a"]) == []
	lib.array_at("x", ["a"]) == []
	lib.object_at({"a": [1]}, ["a"]) == {}
	lib.get(null, ["a"], 7) == 7
	lib.containers({"containers": [{"name": "a"}, null, "b"]}) == [{"name": "a"}]
}

# --- pod specs and containers

test_pod_spec_helpers_find_the_pod_spec_of_each_kind if {
	cron := {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}}}
	lib.pod_spec_path(cron) == ["spec", "jobTemplate", "spec", "template", "spec"]
	lib.pod_spec(cron) == {"containers": [{"name": "c"}]}
	lib.pod_containers(cron) == [{"container": {"name": "c"}, "path": ["spec", "jobTemplate", "spec", "template", "spec", "containers", 0]}]
	not lib.pod_spec({"kind": "Service", "spec": {}})
	not lib.pod_spec({"kind": "Pod", "spec": null})
}

test_effective_settings_come_from_the_container_else_the_pod if {
	spec := {"securityContext": {"runAsUser": 1, "runAsNonRoot": true}}
	c := {"securityContext": {"runAsUser": 2}}
	lib.effective(spec, c, "runAsUser") == 2
	lib.effective(spec, c, "runAsNonRoot") == true
	not lib.effective({}, c, "runAsNonRoot")
}

# A container's setting replaces the pod's whole, as the kubelet applies them: an empty
# seccompProfile of the container is not completed from the pod's.
test_all_containers_carry_the_effective_security_context if {
	pod := {"kind": "Pod", "spec": {
		"securityContext": {"runAsUser": 1, "seccompProfile": {"type": "RuntimeDefault"}},
		"containers": [{"name": "a", "securityContext": {"seccompProfile": {}}}],
	}}
	cs := lib.all_containers with input as {"manifests": [pod]}
	count(cs) == 1
	cs[0].security == {"runAsUser": 1, "seccompProfile": {}}
	cs[0].path == ["spec", "containers", 0]
}

test_app_comes_from_the_context_else_the_values if {
	lib.app == "a" with input as {"context": {"app": "a"}, "values": {"app": "b"}}
	lib.app == "b" with input as {"context": {}, "values": {"app": "b"}}
}

# --- every package evaluates on manifests of the wrong shape, without an error

malformed := [
	f.deployment_with_pod_patch({"volumes": null, "initContainers": null}),
	f.deployment_with_pod_patch({"containers": null}),
	f.deployment_with_pod_patch({"containers": "app", "volumes": "tmp"}),
	f.deployment_with_pod_patch({"volumes": [null, "x", {"name": "n", "nfs": {}}]}),
	f.deployment_with_container({"ports": null, "securityContext": {"capabilities": {"add": "SYS_ADMIN", "drop": null}}}),
	f.deployment_with_container({"securityContext": null, "resources": "big", "image": 3}),
	f.deployment_with_container({"ports": [null, 8080, {"hostPort": 80}]}),
	{"apiVersion": "v1", "kind": "Pod", "metadata": null, "spec": null},
	{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"template": null, "replicas": "3"}},
	{"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"}, "spec": {"tls": null, "rules": null}},
	{"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"}, "spec": {"tls": [{"hosts": null}, "x"], "rules": [null, {"host": 3}]}},
	{"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p"}, "spec": {"selector": {"matchExpressions": null}}},
	{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "n"}, "spec": {"podSelector": "x", "policyTypes": null}},
	"not an object",
	null,
	[1, 2],
]

test_every_package_survives_malformed_manifests if {
	denied := ((((pss.deny | hardening.deny) | images.deny) | ingress.deny) | tenancy.deny) | (labels.deny | rbac.deny) with input as f.validate(malformed) with data.teams as f.teams
	count(denied) > 0
	warned := ((hardening.warn | ingress.warn) | tenancy.warn) | labels.warn with input as f.validate(malformed) with data.teams as f.teams
	count(warned) > 0
}

test_names_fall_back_to_generate_name if {
	lib.name({"metadata": {"generateName": "db-migrate-"}}) == "db-migrate-"
	lib.name({"metadata": {"name": ""}}) == "unnamed"
}
