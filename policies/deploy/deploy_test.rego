package deploy_test

import data.deploy

team := {"apps": ["payments-api"], "source_repos": ["acme/payments-*"]}

platform := {"production": ["prod"], "admins": ["github:platform-oncall"], "ci_environment": false}

req(intent, env) := {"app": "payments-api", "team": "payments", "env": env, "intent": intent}

github(repo, ref) := {"kind": "github", "repository": repo, "ref": ref, "sha": "4f2a9c1", "user": "octocat", "environment": ""}

doc(identity, request) := {
	"claims": {},
	"issuer": "https://token.actions.githubusercontent.com",
	"identity": identity,
	"request": request,
	"team": team,
	"platform": platform,
}

test_team_repository_deploys_to_prod_from_main if {
	count(deploy.deny with input as doc(github("acme/payments-api", "refs/heads/main"), req("deploy", "prod"))) == 0
}

test_feature_branch_deploys_to_staging if {
	count(deploy.deny with input as doc(github("acme/payments-api", "refs/heads/feature"), req("deploy", "staging"))) == 0
}

test_another_teams_repository_is_denied if {
	some msg in deploy.deny with input as doc(github("acme/ledger-api", "refs/heads/main"), req("deploy", "staging"))
	contains(msg, "is not one of team payments's source repositories")
}

test_glob_stays_within_a_segment if {
	some msg in deploy.deny with input as doc(github("acme/payments-x/evil", "refs/heads/main"), req("deploy", "dev"))
	contains(msg, "source repositories")
}

test_production_from_a_feature_branch_is_denied if {
	some msg in deploy.deny with input as doc(github("acme/payments-api", "refs/heads/feature"), req("deploy", "prod"))
	contains(msg, "only from the default branch")
}

test_production_from_a_gitlab_protected_ref if {
	id := {"kind": "gitlab", "repository": "acme/payments-api", "ref": "refs/heads/release", "user": "alice"}
	input_doc := object.union(doc(id, req("deploy", "prod")), {"claims": {"ref_protected": "true"}})
	count(deploy.deny with input as input_doc) == 0
}

test_team_default_branch if {
	input_doc := object.union(doc(github("acme/payments-api", "refs/heads/trunk"), req("deploy", "prod")), {"team": object.union(team, {"default_branch": "trunk"})})
	count(deploy.deny with input as input_doc) == 0
}

test_unowned_app_is_denied if {
	input_doc := object.union(doc(github("acme/payments-api", "refs/heads/main"), req("deploy", "dev")), {"team": null})
	some msg in deploy.deny with input as input_doc
	contains(msg, "no team in the teams registry owns app")
}

test_admin_rolls_back_from_the_platform_repository if {
	id := github("acme/platform-ops", "refs/heads/main")
	count(deploy.deny with input as doc(object.union(id, {"user": "platform-oncall"}), req("rollback", "prod"))) == 0
}

test_admin_does_not_deploy_from_another_repository if {
	id := object.union(github("acme/platform-ops", "refs/heads/main"), {"user": "platform-oncall"})
	some msg in deploy.deny with input as doc(id, req("deploy", "prod"))
	contains(msg, "source repositories")
}

test_non_admin_rollback_from_another_repository_is_denied if {
	some msg in deploy.deny with input as doc(github("acme/platform-ops", "refs/heads/main"), req("rollback", "prod"))
	contains(msg, "source repositories")
}

test_ci_environment_required_by_the_platform if {
	input_doc := object.union(doc(github("acme/payments-api", "refs/heads/main"), req("deploy", "prod")), {"platform": object.union(platform, {"ci_environment": true})})
	some msg in deploy.deny with input as input_doc
	contains(msg, "only from a CI environment named \"prod\"")
}

test_ci_environment_required_by_the_team_and_given if {
	id := object.union(github("acme/payments-api", "refs/heads/main"), {"environment": "prod"})
	input_doc := object.union(doc(id, req("promote", "prod")), {"team": object.union(team, {"ci_environment": true})})
	count(deploy.deny with input as input_doc) == 0
}
