#!/usr/bin/env bash
# Benchmark (not a test): what a deploy costs in an empty GitOps repository against one
# with 5,000 apps and 20,000 commits, locally and, as pipelines run it, through a remote
# (file:// and smart HTTP with partial clone allowed, as GitHub and GitLab do) with a
# warm cache (a runner that keeps it) and a cold one (an ephemeral runner), side by side
# with the best hand-written script; rollback 30 versions back and verify on a cold
# cache; and the throughput of 16 concurrent writers.
#
#   cargo build --release && benches/repo.sh [path/to/gitops-render]
#   SECTIONS="writers crowd" benches/repo.sh    # only some parts: latency remote writers crowd
#
# Needs git (with git-http-backend) and python3 (the smart-HTTP server and the timer:
# wall time and peak RSS of the largest process, gitops-render or a git it ran).
# The big repository is generated with `git fast-import` (seconds). Every deploy is a
# real one (check, render, commit, push), each with a new --tag so each one commits.
set -euo pipefail

BIN=${1:-"$(cd "$(dirname "$0")/.." && pwd)/target/release/gitops-render"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
APPS=${APPS:-5000}
COMMITS=${COMMITS:-20000}
RUNS=${RUNS:-11}
WRITERS=${WRITERS:-16}
PER_WRITER=${PER_WRITER:-8}
# Which parts to run (all by default): latency remote writers crowd.
SECTIONS=" ${SECTIONS:-latency remote writers crowd} "
section() { [[ $SECTIONS == *" $1 "* ]]; }

for tool in git python3; do
  command -v "$tool" >/dev/null || { echo "benches/repo.sh needs $tool" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "no binary at $BIN: cargo build --release first" >&2; exit 2; }

WORK=$(mktemp -d)
HTTP_PID=
trap '[ -n "${HTTP_PID:-}" ] && kill "$HTTP_PID"; rm -rf "$WORK"' EXIT
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

# `measure CMD...`: runs CMD, prints "<wall ms> <peak RSS KiB>" (RSS: the largest single
# process, gitops-render or any git it ran); CMD's output goes to $WORK/last.log.
measure() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.monotonic()
with open("last.log", "wb") as log:
    rc = subprocess.call(sys.argv[1:], stdout=log, stderr=subprocess.STDOUT)
ms = (time.monotonic() - t) * 1000
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"{ms:.0f} {rss} {rc}")
PY
}

# `series LABEL SETUP CMD...`: $RUNS runs of CMD (with {i} replaced by the run number),
# SETUP (a shell snippet, untimed) before each; prints median, min, max and peak RSS.
series() {
  local label=$1 setup=$2; shift 2
  local times=() rss=0
  for i in $(seq 1 "$RUNS"); do
    eval "$setup"
    local args=("${@//\{i\}/$i}")
    read -r ms kb rc < <(measure "${args[@]}")
    if [ "$rc" != 0 ]; then echo "  $label: run $i failed (exit $rc):" >&2; tail -5 last.log >&2; exit 1; fi
    times+=("$ms"); [ "$kb" -gt "$rss" ] && rss=$kb
  done
  local sorted=($(printf '%s\n' "${times[@]}" | sort -n))
  printf '  %-44s median %5d ms  min %5d  max %5d  peak RSS %4d MB\n' "$label" \
    "${sorted[$(( RUNS / 2 ))]}" "${sorted[0]}" "${sorted[$(( RUNS - 1 ))]}" $(( rss / 1024 )) >&2
  echo "${sorted[$(( RUNS / 2 ))]}"
}

APP=$ROOT/examples/payments-api.yaml
deploy_cmd() { echo "$BIN" deploy "$APP" --env dev --repo "$1" --tag "$2.{i}"; }

"$BIN" check "$APP" --env dev >/dev/null   # warm the page cache
if section latency; then
  echo "deploy latency (one process per deploy: check + render + commit [+ fetch + push]):"
  empty=$(series "local, empty repository" "" $(deploy_cmd "$WORK/empty" 2.0))
  big=$(series "local, 5,000 apps / 20,000 commits" "" $(deploy_cmd "$WORK/big.git" 2.1))
  echo "  ratio big/empty: $(awk -v a="$big" -v b="$empty" 'BEGIN { printf "%.2f", a / b }')"
fi

# Smart HTTP: git http-backend behind a small threaded server, protocol v2 and partial
# clone allowed (uploadpack.allowFilter), pushes accepted.
cat > git_http_server.py <<'PY'
import http.server, os, subprocess, sys
root = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def log_message(self, *a): pass
    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                n = int(self.rfile.readline().split(b";")[0], 16)
                if n == 0:
                    self.rfile.readline(); return out
                out += self.rfile.read(n); self.rfile.read(2)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))
    def run(self):
        path, _, query = self.path.partition("?")
        body = self.body()
        env = {"PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": root, "GIT_HTTP_EXPORT_ALL": "1",
               "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
               "REQUEST_METHOD": self.command, "PATH_INFO": path, "QUERY_STRING": query,
               "REMOTE_ADDR": "127.0.0.1", "REMOTE_USER": "bench", "CONTENT_LENGTH": str(len(body))}
        for h, e in (("Content-Type", "CONTENT_TYPE"), ("Git-Protocol", "GIT_PROTOCOL"),
                     ("Content-Encoding", "HTTP_CONTENT_ENCODING")):
            if self.headers.get(h): env[e] = self.headers[h]
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        if not payload and b"\n\n" in out: head, _, payload = out.partition(b"\n\n")
        status, headers = "200 OK", []
        for line in head.decode().splitlines():
            k, _, v = line.partition(":")
            if k.lower() == "status": status = v.strip()
            elif k: headers.append((k, v.strip()))
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        for k, v in headers: self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload))); self.end_headers()
        self.wfile.write(payload)
    do_GET = do_POST = run
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
mkdir -p served
git clone -q --bare big.git served/big.git
git init -q --bare -b main served/empty.git
for r in served/big.git served/empty.git; do
  git -C "$r" config http.receivepack true
  git -C "$r" config uploadpack.allowFilter true
done
coproc HTTP { exec python3 git_http_server.py "$WORK/served"; }
read -r PORT <&"${HTTP[0]}"
git init -q --bare -b main file-empty.git
git clone -q --bare big.git file-big.git

remote_series() {
  local kind=$1 big_url=$2 empty_url=$3
  echo "through a $kind remote:"
  local e w c s
  rm -rf "$WORK/cache-warm"
  export GITOPS_RENDER_CACHE_DIR=$WORK/cache-warm
  "$BIN" deploy "$APP" --env dev --repo "$empty_url" --tag 0.9.0 >/dev/null
  e=$(series "empty remote, warm cache" "" $(deploy_cmd "$empty_url" 3.0))
  "$BIN" deploy "$APP" --env dev --repo "$big_url" --tag 0.9.0 >/dev/null
  w=$(series "5,000 apps / 20,000 commits, warm cache" "" $(deploy_cmd "$big_url" 3.1))
  c=$(series "5,000 apps / 20,000 commits, cold cache" 'rm -rf "$WORK/cache-cold"' \
      env GITOPS_RENDER_CACHE_DIR="$WORK/cache-cold" $(deploy_cmd "$big_url" 3.2))
  "$BIN" render "$APP" --env dev --tag 3.3.0 --out rendered >/dev/null
  s=$(series "hand script: shallow+blob-less+sparse clone" 'rm -rf "$WORK/clone"' \
      bash -c 'set -e
        git clone -q --depth 1 --filter=blob:none --sparse "$1" clone
        cd clone
        git sparse-checkout set apps/payments-api/dev
        mkdir -p apps/payments-api/dev
        cp ../rendered/* apps/payments-api/dev/
        sed -i "s/3.3.0/3.3.$2/" apps/payments-api/dev/*.yaml
        git add -A apps/payments-api/dev
        git -c user.name=bench -c user.email=bench@example.com commit -q -m "deploy(payments-api/dev): 3.3.$2"
        git push -q origin HEAD:main' _ "$big_url" "{i}")
  echo "  warm/empty: $(awk -v a="$w" -v b="$e" 'BEGIN { printf "%.2f", a / b }') (goal <= 2); cold/script: $(awk -v a="$c" -v b="$s" 'BEGIN { printf "%.2f", a / b }') (goal < 1)"
  # 32 more versions, then a rollback 30 versions back and a verify, each from a cold cache.
  for v in $(seq 0 31); do "$BIN" deploy "$APP" --env dev --repo "$big_url" --tag "5.0.$v" >/dev/null; done
  RUNS_SAVED=$RUNS; RUNS=1
  series "rollback 30 versions back, cold cache" 'rm -rf "$WORK/cache-cold"' \
    env GITOPS_RENDER_CACHE_DIR="$WORK/cache-cold" "$BIN" rollback --repo "$big_url" \
    --app payments-api --env dev --to 5.0.1 >/dev/null
  rm -rf "$WORK/cache-cold"
  read -r ms kb rc < <(measure env GITOPS_RENDER_CACHE_DIR="$WORK/cache-cold" timeout 120 "$BIN" verify --repo "$big_url")
  echo "  verify, cold cache (5,000 generated apps, all drift: exit $rc)    $ms ms, peak RSS $(( kb / 1024 )) MB" >&2
  RUNS=$RUNS_SAVED
  unset GITOPS_RENDER_CACHE_DIR
}

if section remote; then
  remote_series "file://" "file://$WORK/file-big.git" "file://$WORK/file-empty.git"
  remote_series "smart HTTP (partial clone allowed)" "http://127.0.0.1:$PORT/big.git" "http://127.0.0.1:$PORT/empty.git"
fi

writers() {
  local repo=$1 label=$2
  local t=$(now_ms)
  local pids=()
  for w in $(seq -w 0 $(( WRITERS - 1 ))); do
    (
      for k in $(seq 1 "$PER_WRITER"); do
        "$BIN" --platform platform deploy "w$w.yaml" --env dev --repo "$repo" --tag "3.0.$k" >/dev/null
      done
    ) &
    pids+=($!)
  done
  # Only the writers: a bare `wait` would also wait for the smart-HTTP server.
  wait "${pids[@]}"
  local ms=$(( $(now_ms) - t ))
  local n=$(( WRITERS * PER_WRITER ))
  echo "  $label: $n deploys by $WRITERS concurrent writers in $ms ms = $(awk -v n="$n" -v ms="$ms" 'BEGIN { printf "%.1f", n * 1000 / ms }') deploys/s"
}

if section writers; then
  echo "throughput, $WRITERS concurrent writers x $PER_WRITER deploys each:"
  before=$(git -C big.git rev-list --count main)
  writers "$WORK/big.git" "local, big repository   "
  after=$(git -C big.git rev-list --count main)
  echo "    landed $(( after - before )) commits; merges: $(git -C big.git rev-list --merges --count main); fsck: $(git -C big.git fsck --strict --no-dangling >/dev/null 2>&1 && echo clean || echo FAILED)"
  git init -q --bare -b main remote.git
  export GITOPS_RENDER_CACHE_DIR=$WORK/cache
  writers "file://$WORK/remote.git" "file:// remote, empty   "
  echo "    landed $(git -C remote.git rev-list --count main) commits; merges: $(git -C remote.git rev-list --merges --count main)"
  unset GITOPS_RENDER_CACHE_DIR
fi

# Issue 9 item 10: a crowd of pipelines at once. CROWD deploys of different apps (each a
# new version) through one file:// remote, and at the same time one `rerender --all` of a
# platform upgrade (a longer termination grace period, so it commits every app): once
# with one shared cache (one runner), once with a cold cache per deploy (one runner per
# pipeline). Every one must land.
CROWD=${CROWD:-64}
cp -r platform platform-v2
sed -i 's/termination_grace_period_seconds = 30/termination_grace_period_seconds = 45/' \
  platform-v2/templates/_common/platform.j2
crowd() {
  local label=$1 shared=$2
  rm -rf crowd.git crowd-cache* rc.*
  git init -q --bare -b main crowd.git
  for w in $(seq -w 0 $(( CROWD - 1 ))); do
    GITOPS_RENDER_CACHE_DIR=$WORK/crowd-cache "$BIN" --platform platform deploy "w$w.yaml" \
      --env dev --repo "file://$WORK/crowd.git" --tag 1.0.0 >/dev/null
  done
  local before=$(git -C crowd.git rev-list --count main) t=$(now_ms) pids=()
  for w in $(seq -w 0 $(( CROWD - 1 ))); do
    local cache=$WORK/crowd-cache; [ "$shared" = 1 ] || cache=$WORK/crowd-cache-$w
    # `set +e`: the subshell inherits errexit, which would skip writing a failure's code.
    ( set +e; GITOPS_RENDER_CACHE_DIR=$cache "$BIN" --platform platform deploy "w$w.yaml" --env dev \
        --repo "file://$WORK/crowd.git" --tag 2.0.0 >"out.$w" 2>&1; echo $? > "rc.$w" ) &
    pids+=($!)
  done
  ( set +e; GITOPS_RENDER_CACHE_DIR=$WORK/crowd-cache-rerender "$BIN" --platform platform-v2 rerender \
      --all --repo "file://$WORK/crowd.git" >out.rerender 2>&1; echo $? > rc.rerender ) &
  pids+=($!)
  for p in "${pids[@]}"; do wait "$p" || true; done
  # Every process writes its rc file last: count them, so none is missed however the
  # shell reaped it.
  while [ "$(ls rc.* 2>/dev/null | wc -l)" -lt $(( CROWD + 1 )) ]; do sleep 0.1; done
  local ms=$(( $(now_ms) - t ))
  local failed=$(grep -Lx 0 rc.* | wc -l)
  local landed=$(( $(git -C crowd.git rev-list --count main) - before ))
  echo "  $label: $CROWD deploys + rerender --all in $ms ms; failed: $failed; commits landed: $landed; fsck: $(git -C crowd.git fsck --strict --no-dangling >/dev/null 2>&1 && echo clean || echo FAILED)"
  for f in $(grep -Lx 0 rc.* || true); do echo "    $f: exit $(cat "$f"): $(tail -1 "out.${f#rc.}")"; done
}
if section crowd; then
  echo "a crowd: $CROWD concurrent deploys of different apps + one rerender --all, file:// remote:"
  crowd "one shared cache        " 1
  crowd "a cold cache per deploy " 0
fi
