#!/usr/bin/env bash
# Objects per second of `validate`, in one process, at growing sizes, with and without
# findings: is it fast, and does it stay linear?
#
#   benches/validate.sh [SIZES...]     (default: 500 5000 50000; needs a release build)
#
# Each app is five objects (ServiceAccount, Deployment, Service, PodDisruptionBudget,
# NetworkPolicy) in its own namespace, as a chart renders them; 50 apps per file.
#   clean:   the hardened app of tests/fixtures/manifests/hardened-app.yaml: no findings;
#   dirty:   the same with a root, writable, privileged container, a `latest` image and
#            an unknown field: about 12 findings per app, errors from the schema and
#            the policies both.
# Prints objects, findings, wall seconds and objects per second for each run.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-target/release/gitops-render}
[ -x "$bin" ] || cargo build --release
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(500 5000 50000)
work=${BENCH_DIR:-bench-out/validate}
template=tests/fixtures/manifests/hardened-app.yaml

make_corpus() { # make_corpus DIR OBJECTS dirty|clean
  local dir=$1 objects=$2 kind=$3 apps=$(($2 / 5))
  rm -rf "$dir" && mkdir -p "$dir"
  awk -v apps="$apps" -v kind="$kind" -v dir="$dir" '
    { body = body $0 "\n" }
    END {
      if (kind == "dirty") {
        gsub(/readOnlyRootFilesystem: true/, "readOnlyRootFilesystem: false", body)
        gsub(/runAsNonRoot: true/, "runAsNonRoot: false", body)
        gsub(/allowPrivilegeEscalation: false/, "privileged: true", body)
        gsub(/shop:2\.3\.1/, "shop:latest", body)
        gsub(/imagePullPolicy: IfNotPresent/, "imagePullPolicyy: IfNotPresent", body)
      }
      for (i = 0; i < apps; i++) {
        file = sprintf("%s/apps-%04d.yaml", dir, int(i / 50))
        app = body
        gsub(/shop-prod/, "ns-" i, app)
        gsub(/shop/, "app-" i, app)
        printf "---\n%s", app >> file
      }
    }' "$template"
}

printf '%-6s %8s %9s %8s %10s\n' kind objects findings seconds objects/s
for n in "${sizes[@]}"; do
  for kind in clean dirty; do
    dir=$work/$kind-$n
    make_corpus "$dir" "$n" "$kind"
    start=$(date +%s.%N)
    set +e
    "$bin" validate "$dir" --output json > "$dir.json"
    code=$?
    set -e
    end=$(date +%s.%N)
    [ "$code" -le 1 ] || { echo "validate failed with exit $code" >&2; exit 1; }
    findings=$(grep -o "\"rule\":" "$dir.json" | wc -l || true)
    awk -v k="$kind" -v n="$n" -v f="$findings" -v s="$start" -v e="$end" \
      'BEGIN { t = e - s; printf "%-6s %8d %9d %8.2f %10.0f\n", k, n, f, t, n / t }'
  done
done
