# Tenancy: who may deploy what, from where, into which namespace.
#
# The rules about the deployment itself (team, app, source repository) read the values
# and the context, and do not fire in validate mode, where those are absent. The rules
# about namespaces and team labels read the manifests.
package gitops.tenancy

import data.gitops.lib
import data.gitops.lib.app
import data.gitops.lib.manifests
import data.gitops.lib.team
import data.gitops.lib.teams

# team-unknown: the team is in the teams registry.
deny contains f if {
	t := team
	not teams[t]
	f := lib.values_finding(
		"team-unknown",
		sprintf("team %q is not in the teams registry (known teams: %v): use your team's name as registered, or ask the platform team to register it", [t, known_teams]),
		team_field,
	)
}

# team-unknown, for objects from any source (validate without --team): the team an
# object's `team` label claims is in the registry. Without this, a label naming a team
# nobody registered would exempt the object from every team rule (registries, hosts),
# since there is no entry to judge it by.
deny contains f if {
	not team
	some obj in manifests
	t := obj.metadata.labels.team
	is_string(t)
	t != ""
	not teams[t]
	f := lib.finding(
		"team-unknown",
		sprintf("%s is labelled team %q, which is not in the teams registry (known teams: %v): label it with its team's registered name", [lib.resource(obj), t, known_teams]),
		obj, null,
	)
}

known_teams := concat(", ", sort(object.keys(teams))) if {
	count(teams) > 0
} else := "none"

team_field := "team" if {
	lib.value_string("team")
} else := null

# team-owns-app: the team owns the app in the teams registry.
deny contains f if {
	t := team
	cfg := teams[t]
	a := app
	not a in lib.array_at(cfg, ["apps"])
	f := lib.values_finding(
		"team-owns-app",
		sprintf("team %q does not own the app %q (its apps: %v): fix `app` or `team`, or ask the platform team to add the app to the team in the teams registry", [t, a, concat(", ", lib.array_at(cfg, ["apps"]))]),
		app_field,
	)
}

app_field := "app" if {
	lib.value_string("app")
} else := null

# source-repo: when the deployment names the repository it comes from, that repository
# is one of the team's (glob patterns such as `acme/payments-*`; `*` stays within one
# path segment; compared case-insensitively, as GitHub does).
deny contains f if {
	repo := lib.context("source_repo")
	t := team
	cfg := teams[t]
	patterns := lib.array_at(cfg, ["source_repos"])
	not source_allowed(lower(repo), patterns)
	f := lib.values_finding(
		"source-repo",
		sprintf("the source repository %q may not deploy for team %q (allowed: %v): deploy from one of the team's repositories", [repo, t, allowed_patterns(patterns)]),
		null,
	)
}

source_allowed(repo, patterns) if {
	some p in patterns
	glob.match(lower(p), ["/"], repo)
}

allowed_patterns(patterns) := concat(", ", patterns) if {
	count(patterns) > 0
} else := "none"

# namespace-team: every namespaced object of a deployment lives in the namespace of its
# team and environment, `<team>-<env>`, so no team can write into another's namespace.
deny contains f if {
	t := team
	e := lib.context("env")
	expected := concat("-", [t, e])
	some i, obj in manifests
	ns := lib.namespace(obj)
	ns != ""
	ns != expected
	lib.namespaced(obj)
	f := lib.finding_at(
		"namespace-team",
		sprintf("%s is in namespace %q, but team %q deploys to %q in %s: put it in %q", [lib.resource(obj), ns, t, expected, e, expected]),
		i, ["metadata", "namespace"], null,
	)
}

# namespace-default: nothing goes into `default` or the system namespaces, where it
# would share space with everything that forgot to set a namespace, or with the cluster.
shared_namespaces := {"default", "kube-system", "kube-public", "kube-node-lease"}

deny contains f if {
	some i, obj in manifests
	ns := obj.metadata.namespace
	shared_namespaces[ns]
	lib.namespaced(obj)
	f := lib.finding_at(
		"namespace-default",
		sprintf("%s is in the shared namespace %q: put it in the app's own namespace", [lib.resource(obj), ns]),
		i, ["metadata", "namespace"], null,
	)
}

# namespace-missing: a namespaced object names its namespace, so where it lands does not
# depend on whoever applies it. Only objects known to be namespaced: a cluster-scoped
# kind has no namespace to set, and a custom resource whose definition gitops-render
# was not given may be either.
warn contains f if {
	some i, obj in manifests
	lib.namespace(obj) == ""
	lib.known_namespaced(obj)
	f := lib.finding_at(
		"namespace-missing",
		sprintf("%s does not set metadata.namespace, so it lands in whatever namespace it is applied to: set it", [lib.resource(obj)]),
		i, ["metadata"], null,
	)
}

# team-label-mismatch: an object of a deployment carries its team's label, not another.
deny contains f if {
	t := team
	some i, obj in manifests
	label := lib.object_at(obj, ["metadata", "labels"]).team
	label != t
	f := lib.finding_at(
		"team-label-mismatch",
		sprintf("%s is labelled team %q but is deployed by team %q: set the label `team: %s`", [lib.resource(obj), label, t, t]),
		i, ["metadata", "labels", "team"], null,
	)
}
