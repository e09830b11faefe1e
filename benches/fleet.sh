#!/usr/bin/env bash
# Whole-process figures for the check pipeline, on a generated fleet.
#
#   benches/fleet.sh [N]        (default N=1000; needs a release build and hyperfine)
#
# Makes a platform directory whose teams registry owns N apps, N values files (a third
# each web-service, worker and cronjob), then times:
#   - `check` of one app (one process, one environment and every environment),
#   - `check` of all N files in one call (every environment and --env prod),
#   - `verify` and `rerender --all --dry-run` of a GitOps repository holding the N apps,
# and prints peak memory of the N-file check from /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
bin=target/release/gitops-render
[ -x "$bin" ] || cargo build --release
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

echo "== one app, whole process"
hyperfine -N --warmup 5 --runs 50 \
  "$bin check $one --env prod" \
  "$bin check $one" \
  "$bin check examples/payments-api.yaml --platform . --env prod"

echo "== $n files in one call"
hyperfine -N --warmup 1 --runs 5 \
  "$bin check $work/values --env prod" \
  "$bin check $work/values"

echo "== peak memory, $n files, every environment"
/usr/bin/time -f "wall %e s, peak RSS %M KiB" "$bin" check "$work/values" > /dev/null

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
