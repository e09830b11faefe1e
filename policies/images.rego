# Images: only from the team's registries, and always a fixed version.
#
# The team of an object is the deployment's team (check/deploy), else the object's own
# `team` label (validate). When neither is known the registry rule cannot apply; the
# label rules report the missing `team` label instead.
package gitops.images

import data.gitops.lib
import data.gitops.lib.all_containers
import data.gitops.lib.teams
import data.gitops.lib.values

# Every container's image reference, parsed once per evaluation for the rules below.
images := [{"e": e, "ref": lib.image_parts(e.container.image)} |
	some e in all_containers
	is_string(e.container.image)
]

# image-registry: the image comes from one of the team's registries (prefix match on
# the repository, Docker Hub short names expanded).
deny contains f if {
	some x in images
	e := x.e
	i := e.i
	obj := e.obj
	c := e.container
	ref := x.ref
	t := lib.object_team(obj)
	registries := teams[t].registries
	is_array(registries)
	not allowed(ref.repository, registries)
	f := lib.finding_at(
		"image-registry",
		sprintf("%s uses the image %q, which is not in a registry team %q may pull from (%v): push the image to one of them", [lib.container_subject(obj, c), c.image, t, concat(", ", registries)]),
		i, array.concat(e.path, ["image"]), values_field(ref.repository, "image"),
	)
}

allowed(repo, registries) if {
	some prefix in registries
	under(repo, prefix)
}

allowed(repo, registries) if {
	some prefix in registries
	under(lib.canonical_repository(repo), prefix)
}

# A prefix that ends in "/" matches any repository below it; any other prefix matches
# that repository or one below it, never a sibling that merely starts the same
# ("registry.example.com/pay" does not match "registry.example.com/payments/app").
under(repo, prefix) if {
	endswith(prefix, "/")
	startswith(repo, prefix)
}

under(repo, prefix) if {
	not endswith(prefix, "/")
	repo == prefix
}

under(repo, prefix) if {
	not endswith(prefix, "/")
	startswith(repo, concat("", [prefix, "/"]))
}

# image-tag-latest: `latest` moves; what runs would change without a deploy, and a
# rollback could not return to it.
deny contains f if {
	some x in images
	e := x.e
	i := e.i
	obj := e.obj
	c := e.container
	ref := x.ref
	ref.digest == ""
	ref.tag == "latest"
	f := lib.finding_at(
		"image-tag-latest",
		sprintf("%s uses the image %q, whose tag `latest` moves: pin a version tag or a sha256 digest", [lib.container_subject(obj, c), c.image]),
		i, array.concat(e.path, ["image"]), values_field(ref.repository, "version"),
	)
}

# image-tag-missing: no tag and no digest means `latest`.
deny contains f if {
	some x in images
	e := x.e
	i := e.i
	obj := e.obj
	c := e.container
	ref := x.ref
	ref.digest == ""
	ref.tag == ""
	f := lib.finding_at(
		"image-tag-missing",
		sprintf("%s uses the image %q without a tag or digest, which pulls `latest`: pin a version tag or a sha256 digest", [lib.container_subject(obj, c), c.image]),
		i, array.concat(e.path, ["image"]), values_field(ref.repository, "version"),
	)
}

# The values field to blame when the image is the app's own (rendered from `image` and
# `version`), so the finding points at the values file's line.
values_field(repo, field) := field if {
	repo == values.image
} else := null
