#!/usr/bin/env bash
# Benchmark (not a test): what a deploy costs in an empty GitOps repository against one
# with 5,000 apps and 20,000 commits, and the throughput of 16 concurrent writers.
#
#   cargo build --release && benches/repo.sh [path/to/gitops-render]
#
# The big repository is generated with `git fast-import` (seconds). Every deploy is a
# real one (check, render, commit), each with a new --tag so each one commits.
set -euo pipefail

BIN=${1:-"$(cd "$(dirname "$0")/.." && pwd)/target/release/gitops-render"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
APPS=${APPS:-5000}
COMMITS=${COMMITS:-20000}
RUNS=${RUNS:-15}
WRITERS=${WRITERS:-16}
PER_WRITER=${PER_WRITER:-8}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export HOME=$WORK GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=$WORK/gitconfig
: > "$GIT_CONFIG_GLOBAL"
cd "$WORK"

now_ms() { date +%s%3N; }

# A platform whose registry lets team `load` own apps w00..w63 (for the writers).
mkdir -p platform
cp -r "$ROOT/templates" "$ROOT/schemas" "$ROOT/policies" platform/
{
  printf 'load:\n  apps: ['
  for i in $(seq -w 0 63); do printf 'w%s, ' "$i"; done
  printf 'zz]\n  registries: [registry.example.com/load/]\n  ingress_domains: [load.apps.example.com]\n  source_repos: ["acme/load-*"]\n'
} >> platform/policies/teams.yaml
for i in $(seq -w 0 63); do
  printf 'app: w%s\nteam: load\narchetype: worker\nimage: registry.example.com/load/w%s\nversion: 1.0.0\nreplicas: 1\nsize: small\n' "$i" "$i" > "w$i.yaml"
done

echo "generating a repository with $APPS apps and $COMMITS commits (git fast-import)..."
t0=$(now_ms)
git init -q --bare -b main big.git
awk -v apps="$APPS" -v commits="$COMMITS" 'BEGIN {
  srand(42);
  body = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: APP\n  namespace: team-dev\nspec:\n  replicas: 2\n";
  for (c = 1; c <= commits; c++) {
    if (c <= apps) { a = c } else { a = 1 + int(rand() * apps) }
    app = sprintf("app-%04d", a); v = sprintf("1.0.%d", c);
    msg = sprintf("deploy(%s/dev): %s\n\nGitops-App: %s\nGitops-Env: dev\nGitops-Version: %s\nGitops-Intent: deploy\nGitops-Actor: bench\n", app, v, app, v);
    printf "commit refs/heads/main\nmark :%d\ncommitter bench <bench@example.com> %d +0000\ndata %d\n%s", c, 1700000000 + c, length(msg), msg;
    if (c > 1) printf "from :%d\n", c - 1;
    vals = sprintf("app: %s\nversion: %s\n", app, v);
    printf "M 100644 inline apps/%s/dev/values.yaml\ndata %d\n%s\n", app, length(vals), vals;
    if (c <= apps) {
      d = body; gsub("APP", app, d);
      printf "M 100644 inline apps/%s/dev/deployment-%s.yaml\ndata %d\n%s\n", app, app, length(d), d;
      k = sprintf("resources:\n- deployment-%s.yaml\n", app);
      printf "M 100644 inline apps/%s/dev/kustomization.yaml\ndata %d\n%s\n", app, length(k), k;
    }
  }
}' | git -C big.git fast-import --quiet
# fast-import writes one pack already: no gc, so generation takes seconds.
echo "  done in $(( $(now_ms) - t0 )) ms: $(git -C big.git rev-list --count main) commits, $(git -C big.git ls-tree main:apps | wc -l) apps"

# Median wall time of $RUNS deploys into $1 (each one a new version, so each commits).
deploy_series() {
  local repo=$1 label=$2 times=()
  for i in $(seq 1 "$RUNS"); do
    local t=$(now_ms)
    "$BIN" deploy "$ROOT/examples/payments-api.yaml" --env dev --repo "$repo" --tag "2.0.$i" >/dev/null
    times+=($(( $(now_ms) - t )))
  done
  local sorted=($(printf '%s\n' "${times[@]}" | sort -n))
  echo "  $label: median ${sorted[$(( RUNS / 2 ))]} ms, min ${sorted[0]} ms, max ${sorted[$(( RUNS - 1 ))]} ms over $RUNS deploys" >&2
  echo "${sorted[$(( RUNS / 2 ))]}"
}

echo "deploy latency (one process per deploy, check + render + commit):"
"$BIN" check "$ROOT/examples/payments-api.yaml" --env dev >/dev/null   # warm the page cache
empty=$(deploy_series "$WORK/empty" "empty repository       ")
big=$(deploy_series "$WORK/big.git" "5,000 apps, 20,000 commits")
echo "  ratio big/empty: $(awk -v a="$big" -v b="$empty" 'BEGIN { printf "%.2f", a / b }')"

writers() {
  local repo=$1 label=$2
  local t=$(now_ms)
  for w in $(seq -w 0 $(( WRITERS - 1 ))); do
    (
      for k in $(seq 1 "$PER_WRITER"); do
        "$BIN" --platform platform deploy "w$w.yaml" --env dev --repo "$repo" --tag "3.0.$k" --attempts 60 >/dev/null
      done
    ) &
  done
  wait
  local ms=$(( $(now_ms) - t ))
  local n=$(( WRITERS * PER_WRITER ))
  echo "  $label: $n deploys by $WRITERS concurrent writers in $ms ms = $(awk -v n="$n" -v ms="$ms" 'BEGIN { printf "%.1f", n * 1000 / ms }') deploys/s"
}

echo "throughput, $WRITERS concurrent writers x $PER_WRITER deploys each:"
before=$(git -C big.git rev-list --count main)
writers "$WORK/big.git" "local, big repository   "
after=$(git -C big.git rev-list --count main)
echo "    landed $(( after - before )) commits; merges: $(git -C big.git rev-list --merges --count main); fsck: $(git -C big.git fsck --strict --no-dangling >/dev/null 2>&1 && echo clean || echo FAILED)"
git init -q --bare -b main remote.git
export GITOPS_RENDER_CACHE_DIR=$WORK/cache
writers "file://$WORK/remote.git" "file:// remote, empty   "
echo "    landed $(git -C remote.git rev-list --count main) commits; merges: $(git -C remote.git rev-list --merges --count main)"
