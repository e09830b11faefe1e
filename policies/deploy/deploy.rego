# Who may deploy what where through `serve`'s deploy API (docs/deploy-api.md).
#
# Judged after the token verified, before anything is rendered or written. `deny` is a
# set of reasons; any reason refuses the request (403) and is recorded as a rejected
# event. Input:
#   claims    the token's verified claims, as the CI issued them
#   issuer    the trusted issuer that signed it
#   identity  the claims read the same way for every CI: kind (github|gitlab|oidc),
#             repository, ref (refs/heads/... or refs/tags/...), sha, user, environment
#   request   {app, team, env, intent}: intent is deploy | rollback | promote
#   team      the owning team's entry in policies/teams.yaml (null: no team owns it)
#   platform  {production: [env...], admins: ["github:user"...], ci_environment: bool}
package deploy

repository := object.get(input.identity, "repository", "")

production if input.request.env in input.platform.production

# The token's repository is one of the owning team's source repositories (globs, `*`
# stays within one path segment).
owned if {
	some pattern in input.team.source_repos
	glob.match(pattern, ["/"], repository)
}

# A platform admin, named in platform.yaml's deploy.admins as `<ci>:<user>`.
admin if {
	user := object.get(input.identity, "user", "")
	user != ""
	sprintf("%s:%s", [input.identity.kind, user]) in input.platform.admins
}

default_branch := b if {
	b := input.team.default_branch
} else := "main"

protected_ref if input.identity.ref == sprintf("refs/heads/%s", [default_branch])

# GitLab says so itself; a string in its tokens.
protected_ref if input.claims.ref_protected == "true"

ci_environment_required if input.platform.ci_environment == true

ci_environment_required if input.team.ci_environment == true

deny contains msg if {
	input.team == null
	msg := sprintf("no team in the teams registry owns app %q", [input.request.app])
}

deny contains msg if {
	input.team != null
	not owned
	not rollback_by_admin
	msg := sprintf("repository %q is not one of team %s's source repositories (%s)", [repository, input.request.team, concat(", ", input.team.source_repos)])
}

rollback_by_admin if {
	input.request.intent == "rollback"
	admin
}

deny contains msg if {
	production
	not protected_ref
	msg := sprintf("%s is production: only from the default branch (refs/heads/%s) or a protected ref, not %q", [input.request.env, default_branch, object.get(input.identity, "ref", "")])
}

deny contains msg if {
	production
	ci_environment_required
	object.get(input.identity, "environment", "") != input.request.env
	msg := sprintf("%s is production: only from a CI environment named %q, not %q", [input.request.env, input.request.env, object.get(input.identity, "environment", "")])
}
