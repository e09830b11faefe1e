package gitops.tenancy_test

import data.gitops.fixtures_test as f
import data.gitops.tenancy

findings(doc) := x if {
	x := tenancy.deny | tenancy.warn with input as doc with data.teams as f.teams
}

test_standard_manifests_pass if {
	count(findings(f.good)) == 0
}

test_validate_mode_without_context_passes if {
	count(findings(f.validate(f.manifests))) == 0
}

# --- team-unknown

test_team_unknown_fires if {
	doc := {"values": object.union(f.values, {"team": "ledger"}), "manifests": [], "context": object.union(f.context, {"team": "ledger"})}
	some x in findings(doc)
	x.rule == "team-unknown"
	x.field == "team"
	contains(x.message, "payments")
}

test_team_unknown_fires_from_context_alone if {
	doc := {"values": {}, "manifests": [], "context": object.union(f.context, {"team": "ledger"})}
	some x in findings(doc)
	x.rule == "team-unknown"
	not x.field
}

test_team_unknown_fires_for_an_object_label_in_validate_mode if {
	sa := object.union(f.service_account, {"metadata": {"labels": {"team": "ghost"}}})
	some x in findings(f.validate([sa]))
	x.rule == "team-unknown"
	x.resource == "ServiceAccount/payments-api"
	contains(x.message, "ghost")
}

test_team_unknown_leaves_labels_to_team_label_mismatch_when_the_team_is_known if {
	sa := object.union(f.service_account, {"metadata": {"labels": {"team": "ghost"}}})
	x := findings(f.with_manifests([sa]))
	not "team-unknown" in f.rules(x)
	"team-label-mismatch" in f.rules(x)
}

test_team_unknown_passes if {
	not "team-unknown" in f.rules(findings(f.good))
}

# --- team-owns-app

test_team_owns_app_fires if {
	doc := {"values": object.union(f.values, {"app": "billing-api"}), "manifests": [], "context": object.union(f.context, {"app": "billing-api"})}
	some x in findings(doc)
	x.rule == "team-owns-app"
	x.field == "app"
	contains(x.message, "billing-api")
}

test_team_owns_app_does_not_fire_for_unknown_team if {
	doc := {"values": {}, "manifests": [], "context": object.union(f.context, {"team": "ledger", "app": "billing-api"})}
	x := findings(doc)
	not "team-owns-app" in f.rules(x)
}

test_team_owns_app_passes if {
	not "team-owns-app" in f.rules(findings(f.good))
}

# --- source-repo

test_source_repo_fires_for_other_org if {
	some x in findings(f.with_context({"source_repo": "evil/payments-api"}))
	x.rule == "source-repo"
	contains(x.message, "evil/payments-api")
}

test_source_repo_fires_when_star_would_cross_a_slash if {
	x := findings(f.with_context({"source_repo": "acme/payments-x/../other"}))
	"source-repo" in f.rules(x)
}

test_source_repo_fires_for_prefix_without_dash if {
	x := findings(f.with_context({"source_repo": "acme/paymentsapi"}))
	"source-repo" in f.rules(x)
}

test_source_repo_passes_for_team_repo if {
	x := findings(f.with_context({"source_repo": "acme/payments-api"}))
	not "source-repo" in f.rules(x)
}

test_source_repo_passes_case_insensitively if {
	x := findings(f.with_context({"source_repo": "ACME/Payments-API"}))
	not "source-repo" in f.rules(x)
}

test_source_repo_passes_when_unset if {
	x := findings(f.with_context({"source_repo": null}))
	not "source-repo" in f.rules(x)
}

# --- namespace-team

test_namespace_team_fires_for_other_namespace if {
	sa := object.union(f.service_account, {"metadata": {"namespace": "ledger-prod"}})
	some x in findings(f.with_manifests([sa]))
	x.rule == "namespace-team"
	x.object == 0
}

test_namespace_team_fires_for_other_env if {
	x := findings(f.with_context({"env": "dev"}))
	"namespace-team" in f.rules(x)
}

test_namespace_team_ignores_cluster_scoped_objects if {
	ns := {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "payments-prod", "labels": f.labels}}
	x := findings(f.with_manifests([ns]))
	not "namespace-team" in f.rules(x)
}

test_namespace_team_passes if {
	not "namespace-team" in f.rules(findings(f.good))
}

# --- namespace-default

test_namespace_default_fires if {
	sa := object.union(f.service_account, {"metadata": {"namespace": "default"}})
	x := findings(f.validate([sa]))
	"namespace-default" in f.rules(x)
}

test_namespace_default_fires_for_kube_system if {
	sa := object.union(f.service_account, {"metadata": {"namespace": "kube-system"}})
	x := findings(f.validate([sa]))
	"namespace-default" in f.rules(x)
}

test_namespace_default_passes if {
	not "namespace-default" in f.rules(findings(f.validate(f.manifests)))
}

# --- namespace-missing

test_namespace_missing_fires if {
	sa := json.remove(f.service_account, ["metadata/namespace"])
	some x in findings(f.validate([sa]))
	x.rule == "namespace-missing"
}

test_namespace_missing_is_a_warning if {
	sa := json.remove(f.service_account, ["metadata/namespace"])
	x := tenancy.deny with input as f.validate([sa])
	not "namespace-missing" in f.rules(x)
}

test_namespace_missing_passes_for_cluster_scoped_objects if {
	x := findings(f.validate([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "payments-prod"}}]))
	not "namespace-missing" in f.rules(x)
}

# --- team-label-mismatch

test_team_label_mismatch_fires if {
	sa := object.union(f.service_account, {"metadata": {"labels": {"team": "ledger"}}})
	some x in findings(f.with_manifests([sa]))
	x.rule == "team-label-mismatch"
	contains(x.message, "ledger")
}

test_team_label_mismatch_passes_in_validate_mode if {
	sa := object.union(f.service_account, {"metadata": {"labels": {"team": "ledger"}}})
	x := findings(f.validate([sa]))
	not "team-label-mismatch" in f.rules(x)
}

test_team_label_mismatch_passes if {
	not "team-label-mismatch" in f.rules(findings(f.good))
}
