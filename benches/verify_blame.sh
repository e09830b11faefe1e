#!/usr/bin/env bash
# `verify` naming who last changed each drifting file, on a long history: the worst case
# of issue 9 item 9 (80 drifting files whose last change is 20,000 commits back).
#
#   benches/verify_blame.sh [COMMITS] [BIN]   (default 20000, target/release/gitops-render;
#                                              needs git; a debug binary works, say so)
#
# Builds the repository with the real binary and `git fast-import`:
#   1. deploys 40 worker apps to dev and prod (80 app environments);
#   2. one hand commit edits the Deployment of each: 80 drifting files;
#   3. COMMITS bot commits on top, each a deploy of one of 24 other apps (toggling
#      between two versions rendered by the binary, so every commit changes a real app
#      directory and the apps/ tree, and verify finds no drift there);
# then times `verify`, which has to walk all COMMITS to reach the hand commit.
set -euo pipefail
cd "$(dirname "$0")/.."
commits=${1:-20000}
bin=$(realpath "${2:-target/release/gitops-render}")
[ -x "$bin" ] || { echo "no binary at $bin: cargo build --release" >&2; exit 2; }
command -v git >/dev/null || { echo "needs git" >&2; exit 2; }
work=$(realpath -m "${BENCH_DIR:-bench-out/verify-blame}")
rm -rf "$work" && mkdir -p "$work/values"
cp -r templates schemas policies "$work/"
{
  echo "load:"
  echo "  apps: [$(seq -f 'w%02g' 0 63 | paste -sd, -)]"
  echo "  registries: [registry.example.com/load/]"
  echo "  ingress_domains: [load.apps.example.com]"
  echo '  source_repos: ["acme/load-*"]'
} >> "$work/policies/teams.yaml"
export GITOPS_RENDER_PLATFORM="$work" GIT_COMMITTER_DATE="1780000000 +0000" GIT_AUTHOR_DATE="1780000000 +0000"
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
values() { # app version
  printf 'app: %s\nteam: load\narchetype: worker\nimage: registry.example.com/load/%s\nversion: %s\nreplicas: 1\nsize: small\n' "$1" "$1" "$2" > "$work/values/$1.yaml"
  echo "$work/values/$1.yaml"
}
repo="$work/gitops"
echo "deploying 40 apps to dev and prod, and 24 more in two versions..." >&2
for i in $(seq -f '%02g' 0 39); do
  for env in dev prod; do "$bin" deploy "$(values "w$i" 1.0.0)" --env "$env" --repo "$repo" >/dev/null; done
done
declare -A tree_a tree_b
for i in $(seq 40 63); do
  app="w$i"
  "$bin" deploy "$(values "$app" 1.0.1)" --env dev --repo "$repo" >/dev/null
  tree_b[$app]=$(git -C "$repo" rev-parse "main:apps/$app/dev")
  "$bin" deploy "$(values "$app" 1.0.0)" --env dev --repo "$repo" >/dev/null
  tree_a[$app]=$(git -C "$repo" rev-parse "main:apps/$app/dev")
done
echo "one hand commit editing 80 files..." >&2
git clone -q "$repo" "$work/clone"
for i in $(seq -f '%02g' 0 39); do
  for env in dev prod; do echo "# edited by hand" >> "$work/clone/apps/w$i/$env/deployment-w$i.yaml"; done
done
git -C "$work/clone" -c user.name=Hand -c user.email=hand@example.com commit -qam "hand edits"
git -C "$work/clone" push -q origin main
echo "$commits bot commits..." >&2
parent=$(git -C "$repo" rev-parse main)
{
  for n in $(seq 1 "$commits"); do
    app="w$((40 + n % 24))"
    # Each app toggles between its two versions; both render cleanly from their values.
    if (( (n / 24) % 2 == 0 )); then t=${tree_b[$app]}; v=1.0.1; else t=${tree_a[$app]}; v=1.0.0; fi
    msg="deploy($app/dev): $v

Gitops-App: $app
Gitops-Env: dev
Gitops-Version: $v
Gitops-Intent: deploy
Gitops-Actor: bench
"
    echo "commit refs/heads/main"
    echo "committer gitops-render <gitops-render@localhost> $((1780000000 + n)) +0000"
    echo "data ${#msg}"
    echo "$msg"
    if (( n == 1 )); then echo "from $parent"; fi
    echo "M 040000 $t apps/$app/dev"
    echo
  done
} | git -C "$repo" fast-import --quiet
git -C "$repo" gc -q
echo "history: $(git -C "$repo" rev-list --count main) commits" >&2
echo "verify, drift in 80 files last changed $((commits + 1)) commits back:" >&2
start=$(date +%s.%N)
set +e
"$bin" verify --repo "$repo" --blame-depth $((commits + 10)) > "$work/verify.txt"
code=$?
set -e
end=$(date +%s.%N)
drift=$(grep -c ': differs; last changed in' "$work/verify.txt" || true)
echo "exit $code, $drift drifting files named, $(echo "$end - $start" | bc) s"
