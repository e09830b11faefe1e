package gitops.ingress_test

import data.gitops.fixtures_test as f
import data.gitops.ingress

# The standard Ingress serving `host` (rule and TLS).
ingress_for(host) := object.union(f.ingress, {"spec": {
	"tls": [{"hosts": [host], "secretName": "payments-api-tls"}],
	"rules": [object.union(f.ingress.spec.rules[0], {"host": host})],
}})

findings_for(ms) := x if {
	x := ingress.deny | ingress.warn with input as f.with_manifests(ms) with data.teams as f.teams
}

test_standard_manifests_pass if {
	findings := ingress.deny | ingress.warn with input as f.good with data.teams as f.teams
	count(findings) == 0
}

# --- ingress-host-domain

test_ingress_host_domain_fires_for_lookalike_domain if {
	findings := findings_for([ingress_for("evilpayments.apps.example.com")])
	some x in findings
	x.rule == "ingress-host-domain"
	contains(x.message, "evilpayments.apps.example.com")
	x.object == 0
}

test_ingress_host_domain_fires_for_parent_domain if {
	findings := findings_for([ingress_for("apps.example.com")])
	"ingress-host-domain" in f.rules(findings)
}

test_ingress_host_domain_fires_for_suffix_without_dot if {
	findings := findings_for([ingress_for("xpayments.apps.example.com")])
	"ingress-host-domain" in f.rules(findings)
}

test_ingress_host_domain_points_at_values_field if {
	host := "api.ledger.apps.example.com"
	findings := ingress.deny with input as {"values": object.union(f.values, {"ingress": {"host": host}}), "manifests": [ingress_for(host)], "context": f.context} with data.teams as f.teams
	some x in findings
	x.rule == "ingress-host-domain"
	x.field == "ingress.host"
}

test_ingress_host_domain_checks_tls_hosts_too if {
	i := object.union(f.ingress, {"spec": {"tls": [{"hosts": ["*.apps.example.com"], "secretName": "wild"}]}})
	findings := findings_for([i])
	some x in findings
	x.rule == "ingress-host-domain"
	contains(x.message, "*.apps.example.com")
}

test_ingress_host_domain_checks_httproutes if {
	route := {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": f.meta("payments-api"), "spec": {"hostnames": ["api.example.org"]}}
	findings := ingress.deny with input as f.validate([route]) with data.teams as f.teams
	"ingress-host-domain" in f.rules(findings)
}

test_ingress_host_domain_fires_for_team_without_domains if {
	findings := ingress.deny with input as f.good with data.teams as {"payments": json.remove(f.teams.payments, ["ingress_domains"])}
	some x in findings
	x.rule == "ingress-host-domain"
	contains(x.message, "(none)")
}

test_ingress_host_domain_passes_for_domain_itself if {
	findings := findings_for([ingress_for("payments.apps.example.com")])
	not "ingress-host-domain" in f.rules(findings)
}

test_ingress_host_domain_passes_for_subdomain_any_case if {
	findings := findings_for([ingress_for("API.Payments.apps.example.com.")])
	not "ingress-host-domain" in f.rules(findings)
}

test_ingress_host_domain_passes_when_team_unknown if {
	i := json.remove(ingress_for("evil.example.org"), ["metadata/labels/team"])
	findings := ingress.deny with input as f.validate([i]) with data.teams as f.teams
	not "ingress-host-domain" in f.rules(findings)
}

# --- ingress-tls

test_ingress_tls_fires_without_tls if {
	findings := findings_for([json.remove(f.ingress, ["spec/tls"])])
	some x in findings
	x.rule == "ingress-tls"
	x.field == "ingress.host"
}

test_ingress_tls_is_a_warning if {
	findings := ingress.deny with input as f.with_manifests([json.remove(f.ingress, ["spec/tls"])]) with data.teams as f.teams
	not "ingress-tls" in f.rules(findings)
}

test_ingress_tls_passes_with_wildcard_certificate if {
	i := object.union(f.ingress, {"spec": {"tls": [{"hosts": ["*.payments.apps.example.com"], "secretName": "wild"}]}})
	findings := findings_for([i])
	not "ingress-tls" in f.rules(findings)
}

test_ingress_tls_fires_when_wildcard_is_two_levels_up if {
	i := object.union(ingress_for("a.b.payments.apps.example.com"), {"spec": {"tls": [{"hosts": ["*.payments.apps.example.com"], "secretName": "wild"}]}})
	findings := findings_for([i])
	"ingress-tls" in f.rules(findings)
}

test_ingress_tls_passes if {
	findings := findings_for(f.manifests)
	not "ingress-tls" in f.rules(findings)
}
