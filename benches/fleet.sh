#!/usr/bin/env bash
# Whole-process figures for the check pipeline, on a generated fleet.
#
#   benches/fleet.sh [N]        (default N=1000; needs a release build and hyperfine)
#
# Makes a platform directory whose teams registry owns N apps, N values files (a third
# each web-service, worker and cronjob), then times, side by side in one run:
#   - `check` of one app (one process, one environment and every environment),
#   - `check` of all N files in one call (every environment and --env prod),
#   - the same N-file check with each policy evaluator (GITOPS_RENDER_POLICY_EVALUATOR),
#   - `verify` and `rerender --all --dry-run` of a GitOps repository holding the N apps,
# and prints peak memory of the N-file check from /usr/bin/time and the binary's size.
#
# Environment:
#   BIN=path        the binary to measure (default target/release/gitops-render)
#   BASELINE=path   another build to time beside it in the same hyperfine runs, e.g. a
#                   copy of the release binary from before a change
#   FLEET_REPO=0    skip the GitOps repository part (deploys N apps: slow)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
if ! command -v hyperfine > /dev/null; then
  echo "fleet.sh needs hyperfine: apt-get install hyperfine (Debian/Ubuntu), or cargo install hyperfine" >&2
  exit 2
fi
if [ ! -x /usr/bin/time ]; then
  echo "fleet.sh needs GNU time for peak memory: apt-get install time" >&2
  exit 2
fi
bin=${BIN:-target/release/gitops-render}
[ -n "${BIN:-}" ] || [ -x "$bin" ] || cargo build --release
base=${BASELINE:-}
work=${BENCH_DIR:-bench-out/fleet}
rm -rf "$work" && mkdir -p "$work/values"
cp -r templates schemas policies "$work/"

{
  echo "payments:"
  echo "  apps:"
  for i in $(seq -w 0 $((n - 1))); do echo "    - app-$i"; done
  echo "  registries: [registry.example.com/payments/]"
  echo "  ingress_domains: [payments.apps.example.com]"
  echo '  source_repos: ["acme/payments-*"]'
} > "$work/policies/teams.yaml"

for i in $(seq -w 0 $((n - 1))); do
  case $((10#$i % 3)) in
    0) sed -e "s/^app: .*/app: app-$i/" -e "s/host: api\./host: app-$i./" examples/payments-api.yaml ;;
    1) sed -e "s/^app: .*/app: app-$i/" examples/ledger-worker.yaml ;;
    2) sed -e "s/^app: .*/app: app-$i/" examples/nightly-report.yaml ;;
  esac > "$work/values/app-$i.yaml"
done

export GITOPS_RENDER_PLATFORM=$work
one=$work/values/app-000.yaml
echo "== sanity: the fleet passes"
"$bin" check "$work/values" --env prod | tail -1

# Each binary under test, as `label=path`, for the side-by-side runs.
bins=("new=$bin")
[ -n "$base" ] && bins+=("baseline=$base")
cmds() { # cmds ARGS...: one hyperfine command per binary
  for b in "${bins[@]}"; do printf '%s\n' "-n" "${b%%=*}: $*" "${b#*=} $*"; done
}

echo "== binary size"
for b in "${bins[@]}"; do echo "${b%%=*}: $(du -m "${b#*=}" | cut -f1) MB (${b#*=})"; done

echo "== one app, whole process"
mapfile -t args < <(cmds check "$one" --env prod; cmds check "$one"; cmds check examples/payments-api.yaml --platform . --env prod)
hyperfine -N --warmup 5 --runs 50 "${args[@]}"

echo "== $n files in one call"
mapfile -t args < <(cmds check "$work/values" --env prod; cmds check "$work/values")
hyperfine -N --warmup 1 --runs 5 "${args[@]}"

echo "== $n files, --env prod, by policy evaluator (GITOPS_RENDER_POLICY_EVALUATOR)"
hyperfine -N --warmup 1 --runs 5 \
  -n compiled "env GITOPS_RENDER_POLICY_EVALUATOR=compiled $bin check $work/values --env prod" \
  -n interpreter "env GITOPS_RENDER_POLICY_EVALUATOR=interpreter $bin check $work/values --env prod" \
  -n tree "env GITOPS_RENDER_POLICY_EVALUATOR=tree $bin check $work/values --env prod"

echo "== peak memory, $n files, every environment"
for b in "${bins[@]}"; do
  /usr/bin/time -f "${b%%=*}: wall %e s, user %U s, sys %S s, peak RSS %M KiB" "${b#*=}" check "$work/values" > /dev/null
done

[ "${FLEET_REPO:-1}" = 0 ] && exit 0

echo "== a GitOps repository with the $n apps (prod): verify and rerender --dry-run"
export HOME=$work GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=$work/gitconfig
: > "$GIT_CONFIG_GLOBAL"
repo=$work/gitops
t0=$(date +%s)
# Two writers at a time: the repository takes concurrent deploys of different apps.
ls "$work"/values/*.yaml | xargs -P 2 -I{} "$bin" deploy {} --env prod --repo "$repo" --committer "bench <bench@example.com>" > /dev/null
echo "deployed $n apps in $(( $(date +%s) - t0 )) s ($(git -C "$repo" rev-list --count main) commits)"
hyperfine -N --warmup 1 --runs 5 \
  "$bin verify --repo $repo" \
  "$bin rerender --repo $repo --all --dry-run"
/usr/bin/time -f "verify: wall %e s, peak RSS %M KiB" "$bin" verify --repo "$repo" > /dev/null
/usr/bin/time -f "rerender --dry-run: wall %e s, peak RSS %M KiB" "$bin" rerender --repo "$repo" --all --dry-run > /dev/null
