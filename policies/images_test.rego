package gitops.images_test

import data.gitops.fixtures_test as f
import data.gitops.images
import data.gitops.lib

# Findings for the standard manifests whose app container uses `image`.
deny_for_image(image) := x if {
	d := f.deployment_with_container({"image": image})
	x := images.deny with input as f.with_manifests(f.replace_deployment(d)) with data.teams as f.teams
}

# Findings in validate mode for a Deployment using `image`, labelled team `payments`.
validate_image(image) := x if {
	x := images.deny with input as f.validate([f.deployment_with_container({"image": image})]) with data.teams as f.teams
}

test_standard_manifests_pass if {
	count(images.deny) == 0 with input as f.good with data.teams as f.teams
}

# --- the reference parser

test_image_parts_tag if {
	lib.image_parts("registry.example.com:5000/payments/api:1.4.2") == {"repository": "registry.example.com:5000/payments/api", "tag": "1.4.2", "digest": ""}
}

test_image_parts_digest if {
	lib.image_parts("registry.example.com/payments/api@sha256:abc") == {"repository": "registry.example.com/payments/api", "tag": "", "digest": "sha256:abc"}
}

test_image_parts_tag_and_digest if {
	lib.image_parts("nginx:1.27@sha256:abc") == {"repository": "nginx", "tag": "1.27", "digest": "sha256:abc"}
}

test_canonical_repository if {
	lib.canonical_repository("nginx") == "docker.io/library/nginx"
	lib.canonical_repository("bitnami/redis") == "docker.io/bitnami/redis"
	lib.canonical_repository("localhost/app") == "localhost/app"
	lib.canonical_repository("registry.example.com/payments/api") == "registry.example.com/payments/api"
}

# --- image-registry

test_image_registry_fires_for_other_registry if {
	findings := deny_for_image("docker.io/library/nginx:1.27")
	some x in findings
	x.rule == "image-registry"
	x.object == 1
	not x.field
}

test_image_registry_fires_for_another_teams_path if {
	findings := deny_for_image("registry.example.com/ledger/payments-api:1.4.2")
	"image-registry" in f.rules(findings)
}

test_image_registry_fires_for_sibling_prefix if {
	findings := images.deny with input as f.with_manifests(f.replace_deployment(f.deployment_with_container({"image": "registry.example.com/payments-evil/x:1"}))) with data.teams as {"payments": object.union(f.teams.payments, {"registries": ["registry.example.com/payments"]})}
	"image-registry" in f.rules(findings)
}

test_image_registry_points_at_the_image_field if {
	d := f.deployment_with_container({"image": "docker.io/library/nginx:1.4.2"})
	findings := images.deny with input as {"values": object.union(f.values, {"image": "docker.io/library/nginx"}), "manifests": [d], "context": f.context} with data.teams as f.teams
	some x in findings
	x.rule == "image-registry"
	x.field == "image"
}

test_image_registry_uses_team_label_in_validate_mode if {
	findings := validate_image("quay.io/evil/miner:1")
	"image-registry" in f.rules(findings)
}

test_image_registry_skipped_when_team_unknown if {
	d := json.remove(f.deployment_with_container({"image": "quay.io/evil/miner:1"}), ["metadata/labels/team"])
	findings := images.deny with input as f.validate([d]) with data.teams as f.teams
	not "image-registry" in f.rules(findings)
}

test_image_registry_passes_with_digest if {
	findings := deny_for_image("registry.example.com/payments/payments-api@sha256:4f2a9c1d0b7e8a6f5c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b")
	not "image-registry" in f.rules(findings)
}

test_image_registry_passes_for_docker_hub_short_name if {
	findings := images.deny with input as f.validate([f.deployment_with_container({"image": "nginx:1.27"})]) with data.teams as {"payments": object.union(f.teams.payments, {"registries": ["docker.io/library/"]})}
	not "image-registry" in f.rules(findings)
}

# --- image-tag-latest

test_image_tag_latest_fires if {
	findings := deny_for_image("registry.example.com/payments/payments-api:latest")
	some x in findings
	x.rule == "image-tag-latest"
	x.field == "version"
}

test_image_tag_latest_passes_when_pinned_by_digest if {
	findings := deny_for_image("registry.example.com/payments/payments-api:latest@sha256:abc")
	not "image-tag-latest" in f.rules(findings)
}

test_image_tag_latest_passes_for_version if {
	findings := deny_for_image("registry.example.com/payments/payments-api:1.4.2")
	not "image-tag-latest" in f.rules(findings)
}

# --- image-tag-missing

test_image_tag_missing_fires if {
	findings := deny_for_image("registry.example.com/payments/payments-api")
	"image-tag-missing" in f.rules(findings)
}

test_image_tag_missing_fires_with_registry_port if {
	findings := validate_image("registry.example.com:5000/payments/payments-api")
	"image-tag-missing" in f.rules(findings)
}

test_image_tag_missing_passes_with_digest_only if {
	findings := deny_for_image("registry.example.com/payments/payments-api@sha256:abc")
	not "image-tag-missing" in f.rules(findings)
}
