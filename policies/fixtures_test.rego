# Test fixtures shared by the *_test.rego packages: what the standard templates render
# for examples/payments-api.yaml in prod, which every policy accepts, and helpers to
# break one thing at a time. No test_ rules here.
package gitops.fixtures_test

teams := {"payments": {
	"apps": ["payments-api", "ledger-worker", "nightly-report"],
	"registries": ["registry.example.com/payments/"],
	"ingress_domains": ["payments.apps.example.com"],
	"source_repos": ["acme/payments-*"],
}}

labels := {
	"app.kubernetes.io/name": "payments-api",
	"app.kubernetes.io/instance": "payments-api-prod",
	"app.kubernetes.io/version": "1.4.2",
	"app.kubernetes.io/component": "web-service",
	"app.kubernetes.io/part-of": "payments",
	"app.kubernetes.io/managed-by": "gitops-render",
	"team": "payments",
}

selector := {
	"app.kubernetes.io/name": "payments-api",
	"app.kubernetes.io/instance": "payments-api-prod",
}

meta(name) := {"name": name, "namespace": "payments-prod", "labels": labels}

container := {
	"name": "payments-api",
	"image": "registry.example.com/payments/payments-api:1.4.2",
	"imagePullPolicy": "Always",
	"ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
	"env": [{"name": "LOG_LEVEL", "value": "info"}],
	"resources": {
		"requests": {"cpu": "1", "memory": "2Gi"},
		"limits": {"cpu": "2", "memory": "4Gi"},
	},
	"securityContext": {
		"runAsNonRoot": true,
		"runAsUser": 10001,
		"runAsGroup": 10001,
		"privileged": false,
		"allowPrivilegeEscalation": false,
		"readOnlyRootFilesystem": true,
		"capabilities": {"drop": ["ALL"]},
		"seccompProfile": {"type": "RuntimeDefault"},
	},
	"readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
	"livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
	"volumeMounts": [
		{"name": "tmp", "mountPath": "/tmp"},
		{"name": "secret-payments-db", "mountPath": "/var/run/secrets/payments-db", "readOnly": true},
	],
}

pod_spec := {
	"serviceAccountName": "payments-api",
	"automountServiceAccountToken": false,
	"enableServiceLinks": false,
	"securityContext": {
		"runAsNonRoot": true,
		"runAsUser": 10001,
		"runAsGroup": 10001,
		"fsGroup": 10001,
		"seccompProfile": {"type": "RuntimeDefault"},
	},
	"containers": [container],
	"volumes": [
		{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
		{"name": "secret-payments-db", "secret": {"secretName": "payments-db", "defaultMode": 288}},
	],
}

deployment := deployment_with_pod(pod_spec)

# A Deployment whose pod spec is `spec`.
deployment_with_pod(spec) := {
	"apiVersion": "apps/v1",
	"kind": "Deployment",
	"metadata": meta("payments-api"),
	"spec": {
		"replicas": 6,
		"selector": {"matchLabels": selector},
		"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
		"template": {"metadata": {"labels": labels}, "spec": spec},
	},
}

service_account := {
	"apiVersion": "v1",
	"kind": "ServiceAccount",
	"metadata": meta("payments-api"),
	"automountServiceAccountToken": false,
}

service := {
	"apiVersion": "v1",
	"kind": "Service",
	"metadata": meta("payments-api"),
	"spec": {"selector": selector, "ports": [{"name": "http", "port": 8080, "targetPort": "http"}]},
}

pdb := {
	"apiVersion": "policy/v1",
	"kind": "PodDisruptionBudget",
	"metadata": meta("payments-api"),
	"spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}},
}

network_policy := {
	"apiVersion": "networking.k8s.io/v1",
	"kind": "NetworkPolicy",
	"metadata": meta("payments-api"),
	"spec": {
		"podSelector": {"matchLabels": selector},
		"policyTypes": ["Ingress"],
		"ingress": [{"from": [{"podSelector": {}}], "ports": [{"protocol": "TCP", "port": 8080}]}],
	},
}

ingress := {
	"apiVersion": "networking.k8s.io/v1",
	"kind": "Ingress",
	"metadata": meta("payments-api"),
	"spec": {
		"ingressClassName": "nginx",
		"tls": [{"hosts": ["api.payments.apps.example.com"], "secretName": "payments-api-tls"}],
		"rules": [{"host": "api.payments.apps.example.com", "http": {"paths": [{
			"path": "/",
			"pathType": "Prefix",
			"backend": {"service": {"name": "payments-api", "port": {"name": "http"}}},
		}]}}],
	},
}

manifests := [service_account, deployment, service, pdb, network_policy, ingress]

values := {
	"app": "payments-api",
	"team": "payments",
	"archetype": "web-service",
	"image": "registry.example.com/payments/payments-api",
	"version": "1.4.2",
	"replicas": 6,
	"port": 8080,
	"size": "large",
	"secrets": ["payments-db"],
	"ingress": {"host": "api.payments.apps.example.com"},
	"health": {"path": "/healthz"},
}

context := {"app": "payments-api", "env": "prod", "team": "payments", "source_repo": null, "actor": null}

# check/render/deploy mode: values, context and the rendered manifests.
good := {"values": values, "manifests": manifests, "context": context}

# The same, with other manifests.
with_manifests(ms) := {"values": values, "manifests": ms, "context": context}

# The same, with other context fields merged in.
with_context(patch) := {"values": values, "manifests": manifests, "context": object.union(context, patch)}

# The same, with other values fields merged in.
with_values(patch) := {"values": object.union(values, patch), "manifests": manifests, "context": context}

# validate mode: manifests from any source, no values, an empty context.
validate(ms) := {
	"values": {},
	"manifests": ms,
	"context": {"app": null, "env": null, "team": null, "source_repo": null, "actor": null},
}

# A Deployment whose only container is the standard one with `patch` merged in.
deployment_with_container(patch) := deployment_with_pod(object.union(pod_spec, {"containers": [object.union(container, patch)]}))

# A Deployment whose pod spec has `patch` merged in.
deployment_with_pod_patch(patch) := deployment_with_pod(object.union(pod_spec, patch))

# The standard manifests with the Deployment replaced by `d`.
replace_deployment(d) := [service_account, d, service, pdb, network_policy, ingress]

# The rule ids of a set of findings.
rules(findings) := {f.rule | some f in findings}

# The standard pod spec with a privileged container.
pod_spec_with_privileged := object.union(pod_spec, {"containers": [object.union(container, {"securityContext": {"privileged": true}})]})
