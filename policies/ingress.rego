# Ingress: a team serves only host names at or under its own domains, over TLS.
# Checked on Ingress objects (rules and TLS hosts) and on Gateway API HTTPRoutes.
package gitops.ingress

import data.gitops.lib
import data.gitops.lib.manifests
import data.gitops.lib.teams
import data.gitops.lib.values

# Every host name an object claims, lower-cased, without a trailing dot, with where it
# is written: [{"host": h, "path": [...]}, ...].
hosts(obj) := (ingress_rule_hosts(obj) | ingress_tls_hosts(obj)) | route_hosts(obj)

# The kinds `hosts` reads: asked first, so other objects cost no function call.
host_kinds := {"Ingress", "HTTPRoute", "GRPCRoute", "TLSRoute"}

ingress_rule_hosts(obj) := {{"host": normalise(h), "path": ["spec", "rules", j, "host"]} |
	obj.kind == "Ingress"
	some j, rule in lib.array_at(obj, ["spec", "rules"])
	h := lib.get(rule, ["host"], null)
	is_string(h)
}

ingress_tls_hosts(obj) := {{"host": normalise(h), "path": ["spec", "tls", j, "hosts", k]} |
	obj.kind == "Ingress"
	some j, tls in lib.array_at(obj, ["spec", "tls"])
	some k, h in lib.array_at(tls, ["hosts"])
	is_string(h)
}

route_hosts(obj) := {{"host": normalise(h), "path": ["spec", "hostnames", j]} |
	obj.kind in {"HTTPRoute", "GRPCRoute", "TLSRoute"}
	some j, h in lib.array_at(obj, ["spec", "hostnames"])
	is_string(h)
}

normalise(h) := trim_suffix(lower(h), ".")

# ingress-host-domain: the host is one of the team's ingress domains or below one,
# on a label boundary: `api.payments.apps.example.com` and `payments.apps.example.com`
# are under `payments.apps.example.com`; `evilpayments.apps.example.com` is not.
deny contains f if {
	some i, obj in manifests
	host_kinds[obj.kind]
	some entry in hosts(obj)
	host := entry.host
	t := lib.object_team(obj)
	cfg := teams[t]
	domains := lib.array_at(cfg, ["ingress_domains"])
	not host_allowed(host, domains)
	f := lib.finding_at(
		"ingress-host-domain",
		sprintf("%s serves the host %q, which is not at or under a domain of team %q (%v): use a host name under one of them", [lib.resource(obj), host, t, allowed_list(domains)]),
		i, entry.path, host_field(host),
	)
}

host_allowed(host, domains) if {
	some d in domains
	host == normalise(d)
}

host_allowed(host, domains) if {
	some d in domains
	endswith(host, concat("", [".", normalise(d)]))
}

allowed_list(domains) := concat(", ", domains) if {
	count(domains) > 0
} else := "none"

# The values field to blame when the host is the app's own `ingress.host`.
host_field(host) := "ingress.host" if {
	host == normalise(values.ingress.host)
} else := null

# ingress-tls: every host of an Ingress is covered by its TLS section, so nothing is
# served in clear text.
warn contains f if {
	some i, obj in manifests
	obj.kind == "Ingress"
	some j, rule in lib.array_at(obj, ["spec", "rules"])
	is_string(lib.get(rule, ["host"], null))
	host := normalise(rule.host)
	not tls_covers(obj, host)
	f := lib.finding_at(
		"ingress-tls",
		sprintf("%s serves the host %q without TLS: list it under spec.tls[].hosts with a certificate secret", [lib.resource(obj), host]),
		i, ["spec", "rules", j, "host"], host_field(host),
	)
}

tls_covers(obj, host) if {
	some tls in lib.array_at(obj, ["spec", "tls"])
	some h in lib.array_at(tls, ["hosts"])
	is_string(h)
	normalise(h) == host
}

# A wildcard certificate covers exactly one more label.
tls_covers(obj, host) if {
	some tls in lib.array_at(obj, ["spec", "tls"])
	some h in lib.array_at(tls, ["hosts"])
	is_string(h)
	startswith(h, "*.")
	labels := split(host, ".")
	concat(".", array.slice(labels, 1, count(labels))) == normalise(trim_prefix(h, "*."))
}
