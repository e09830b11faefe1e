#!/usr/bin/env bash
# Benchmark (not a test): deploys through the deploy API (`serve`, POST /api/v1/deploy,
# a pipeline's `deploy --server`) with 1 and 2 replicas, against the same deploys done
# by the CLI itself, each against its own fresh GitOps repository served over smart HTTP
# (git http-backend behind a small threaded server, as benches/repo.sh does).
#
#   cargo build --release && BIN=target/release/gitops-render benches/deploy-api.sh
#   DEPLOYS=64 CONC=16 benches/deploy-api.sh     # more deploys, more at a time
#   DATABASE_URL=postgresql://... benches/deploy-api.sh   # 2 replicas on your PostgreSQL
#
# Prints, per way: deploys per second (DEPLOYS deploys of different apps, CONC at a
# time, each with a new tag so each one commits and pushes) and the latency of one
# deploy, from starting the command (which reads the token and sends the request) to
# its commit pushed (the command's answer), median and p90.
#
# The 2-replica run needs PostgreSQL: DATABASE_URL, or else a throwaway cluster made
# here with Debian's initdb (as tests/it/common/postgres.rs does); without either it is
# skipped. Tokens are RS256 JWTs signed with a key made here (openssl), published by an
# OIDC issuer stand-in on loopback (discovery + JWKS) that `serve --trust-issuer` trusts,
# with GitHub Actions' claims for the repositories team `load` deploys from.
# Needs git (with git-http-backend), python3 and openssl.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-${1:-"$ROOT/target/release/gitops-render"}}
DEPLOYS=${DEPLOYS:-32}
CONC=${CONC:-8}
[ "$DEPLOYS" -le 64 ] || { echo "DEPLOYS is at most 64 (apps w00..w63)" >&2; exit 2; }

for tool in git python3 openssl; do
  command -v "$tool" >/dev/null || { echo "benches/deploy-api.sh needs $tool" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "no binary at $BIN: cargo build --release first" >&2; exit 2; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

WORK=$(mktemp -d)
PIDS=()
PG_STOP=
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "$PG_STOP" ] && eval "$PG_STOP" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
export HOME=$WORK GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=$WORK/gitconfig
: > "$GIT_CONFIG_GLOBAL"
cd "$WORK"

now_ms() { date +%s%3N; }
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# A platform whose registry lets team `load` own apps w00..w63, from acme/load-*.
mkdir -p platform
cp -r "$ROOT/templates" "$ROOT/schemas" "$ROOT/policies" platform/
{
  printf 'load:\n  apps: ['
  for i in $(seq -w 0 63); do printf 'w%s, ' "$i"; done
  printf 'zz]\n  registries: [registry.example.com/load/]\n  ingress_domains: [load.apps.example.com]\n  source_repos: ["acme/load-*"]\n'
} >> platform/policies/teams.yaml
export GITOPS_RENDER_PLATFORM=$WORK/platform
for i in $(seq -w 0 63); do
  printf 'app: w%s\nteam: load\narchetype: worker\nimage: registry.example.com/load/w%s\nversion: 1.0.0\nreplicas: 1\nsize: small\n' "$i" "$i" > "w$i.yaml"
done

# The issuer's key, and its JWK.
openssl genrsa -out issuer.pem 2048 2>/dev/null
MODULUS=$(openssl rsa -in issuer.pem -noout -modulus | cut -d= -f2 |
  python3 -c 'import base64, sys; print(base64.urlsafe_b64encode(bytes.fromhex(sys.stdin.read().strip())).decode().rstrip("="))')

# One server for both stand-ins: smart HTTP under /git/, the OIDC issuer at the root.
cat > stand_ins.py <<'PY'
import http.server, json, os, subprocess, sys
root, modulus = sys.argv[1], sys.argv[2]
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
    def send(self, code, payload, ctype="application/json"):
        self.send_response(code); self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload))); self.end_headers()
        self.wfile.write(payload)
    def run(self):
        path, _, query = self.path.partition("?")
        issuer = "http://127.0.0.1:%d" % self.server.server_address[1]
        if path == "/.well-known/openid-configuration":
            return self.send(200, json.dumps({"issuer": issuer, "jwks_uri": issuer + "/jwks",
                "id_token_signing_alg_values_supported": ["RS256"]}).encode())
        if path == "/jwks":
            return self.send(200, json.dumps({"keys": [{"kty": "RSA", "kid": "bench", "use": "sig",
                "alg": "RS256", "n": modulus, "e": "AQAB"}]}).encode())
        if not path.startswith("/git/"):
            return self.send(404, b"{}")
        body = self.body()
        env = {"PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": root, "GIT_HTTP_EXPORT_ALL": "1",
               "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
               "REQUEST_METHOD": self.command, "PATH_INFO": path[4:], "QUERY_STRING": query,
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
s.daemon_threads = True
print(s.server_address[1], flush=True)
s.serve_forever()
PY
mkdir -p served
for r in cli api1 api2; do
  git init -q --bare -b main "served/$r.git"
  git -C "served/$r.git" config http.receivepack true
  git -C "served/$r.git" config uploadpack.allowFilter true
done
coproc STANDINS { exec python3 stand_ins.py "$WORK/served" "$MODULUS"; }
PIDS+=("$STANDINS_PID")
read -r PORT <&"${STANDINS[0]}"
ISSUER="http://127.0.0.1:$PORT"

# A GitHub Actions token per app's source repository (acme/load-wNN, main), valid an hour.
now=$(date +%s)
header=$(printf '{"alg":"RS256","typ":"JWT","kid":"bench"}' | b64url)
for i in $(seq -w 0 63); do
  claims=$(printf '{"iss":"%s","aud":"gitops-render","sub":"repo:acme/load-w%s:ref:refs/heads/main","iat":%d,"nbf":%d,"exp":%d,"repository":"acme/load-w%s","repository_owner":"acme","ref":"refs/heads/main","ref_type":"branch","sha":"4f2a9c1d3e5b7a9c1d3e5f7a9b1c3d5e7f9a1b3c","actor":"bench","run_id":"%s","event_name":"push"}' \
    "$ISSUER" "$i" "$now" "$((now - 5))" "$((now + 3600))" "$i" "$i" | b64url)
  sig=$(printf '%s.%s' "$header" "$claims" | openssl dgst -sha256 -sign issuer.pem -binary | b64url)
  printf '%s.%s.%s' "$header" "$claims" "$sig" > "token-w$i"
done

# The bot's App configuration (serve wants it; the deploy API pushes with
# GITOPS_RENDER_GIT_TOKEN here, which the smart-HTTP stand-in accepts).
openssl genrsa -out app.pem 2048 2>/dev/null
export GITHUB_APP_ID=1 GITHUB_WEBHOOK_SECRET=bench GITHUB_API_URL=http://localhost:9
export GITHUB_APP_PRIVATE_KEY_PATH=$WORK/app.pem GITOPS_RENDER_GIT_TOKEN=bench

# `start_serve NAME REPO DATABASE`: a replica on a free port; its URL in SERVE_URL
# (not printed: a command substitution would wait for serve's own stdout to close).
start_serve() {
  local log="$WORK/serve-$1.log"
  "$BIN" serve --listen 127.0.0.1:0 --repo "$2" --trust-issuer "$ISSUER" \
    --cache-dir "$WORK/cache-$1" --database "$3" --rate-limit 100000 \
    --max-concurrent-deploys "$CONC" > /dev/null 2> "$log" &
  PIDS+=("$!")
  local deadline=$(( $(date +%s) + 60 ))
  until grep -q 'listening on http://' "$log"; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "serve $1 did not start:" >&2; cat "$log" >&2; exit 3; }
    sleep 0.1
  done
  SERVE_URL=$(sed -n 's/.*listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$log" | head -1)
}

# `run_round NAME TAG CMD...`: DEPLOYS deploys of w00.., CONC at a time, where CMD is
# the command with `@APP@` for the app; prints the figures.
run_round() {
  local name=$1 tag=$2; shift 2
  local times="$WORK/times-$name"
  : > "$times"
  export TAG=$tag TIMES=$times
  printf '%s\n' "$@" > "$WORK/cmd-$name"
  local t0; t0=$(now_ms)
  seq -f %02g 0 $((DEPLOYS - 1)) | xargs -P "$CONC" -I{} bash -c '
    app=w$1; cmd=$(sed "s/@APP@/$app/g" "$0")
    s=$(date +%s%3N)
    if ! out=$(eval "$cmd" 2>&1); then echo "deploy of $app failed: $out" >&2; exit 255; fi
    echo $(( $(date +%s%3N) - s )) >> "$TIMES"' "$WORK/cmd-$name" {}
  local wall=$(( $(now_ms) - t0 ))
  sort -n "$times" | awk -v name="$name" -v n="$DEPLOYS" -v wall="$wall" -v c="$CONC" '
    { v[NR] = $1 }
    END {
      med = v[int((NR + 1) / 2)]; p90 = v[int(NR * 0.9 + 0.999)]
      printf "  %-34s %6.1f deploys/s   latency median %5d ms, p90 %5d ms   (%d deploys, %d at a time, %d ms)\n", name, n * 1000 / wall, med, p90, n, c, wall
    }'
}

landed() { git -C "served/$1.git" rev-list --count main; }

echo "deploys of different apps to dev over smart HTTP: $DEPLOYS, $CONC at a time"

run_round "CLI (deploy --repo)" 1.1.0 \
  "\"$BIN\" deploy $WORK/@APP@.yaml --env dev --tag \$TAG --repo $ISSUER/git/cli.git --cache-dir $WORK/cache-cli-@APP@ --source-repo acme/load-@APP@ --database $WORK/cli-events.sqlite"
[ "$(landed cli)" -eq "$DEPLOYS" ] || { echo "CLI: $(landed cli) of $DEPLOYS landed" >&2; exit 1; }

start_serve one "$ISSUER/git/api1.git" "$WORK/events-one.sqlite"
SERVE1=$SERVE_URL
# Warm: the first request fetches the issuer's keys and clones the repository.
"$BIN" deploy "$WORK/w63.yaml" --env dev --server "$SERVE1" --id-token-file "$WORK/token-w63" >/dev/null
run_round "deploy API, 1 replica" 1.1.0 \
  "\"$BIN\" deploy $WORK/@APP@.yaml --env dev --tag \$TAG --server $SERVE1 --id-token-file $WORK/token-@APP@"
[ "$(landed api1)" -eq $((DEPLOYS + 1)) ] || { echo "1 replica: $(landed api1) of $((DEPLOYS + 1)) landed" >&2; exit 1; }

DB=${DATABASE_URL:-}
if [ -z "$DB" ]; then
  initdb=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1 || true)
  if [ -n "$initdb" ]; then
    pgbin=$(dirname "$initdb")
    mkdir -p pg
    as=()
    if [ "$(id -u)" = 0 ]; then
      # PostgreSQL refuses to run as root: the cluster belongs to nobody, who must
      # be able to reach it through the work directory.
      chmod o+x "$WORK"
      chown 65534:65534 pg
      as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    fi
    "${as[@]}" "$pgbin/initdb" -D "$WORK/pg/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
    "${as[@]}" "$pgbin/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/log" -w \
      -o "-k $WORK/pg -c listen_addresses= -c fsync=off" start >/dev/null
    PG_STOP="${as[*]} $pgbin/pg_ctl -D $WORK/pg/data -m immediate stop"
    DB="postgresql://postgres@$(printf '%s' "$WORK/pg" | sed 's/%/%25/g; s/\//%2F/g'):5432/postgres"
  fi
fi
if [ -n "$DB" ]; then
  start_serve two-a "$ISSUER/git/api2.git" "$DB"
  SERVE2A=$SERVE_URL
  start_serve two-b "$ISSUER/git/api2.git" "$DB"
  SERVE2B=$SERVE_URL
  "$BIN" deploy "$WORK/w63.yaml" --env dev --server "$SERVE2A" --id-token-file "$WORK/token-w63" >/dev/null
  "$BIN" deploy "$WORK/w63.yaml" --env dev --tag 0.0.1 --server "$SERVE2B" --id-token-file "$WORK/token-w63" >/dev/null
  # Even apps to one replica, odd to the other, as a load balancer would spread them.
  run_round "deploy API, 2 replicas (PostgreSQL)" 1.1.0 \
    "n=\$((10#\${app#w})); if [ \$((n % 2)) = 0 ]; then s=$SERVE2A; else s=$SERVE2B; fi; \"$BIN\" deploy $WORK/@APP@.yaml --env dev --tag \$TAG --server \$s --id-token-file $WORK/token-@APP@"
  [ "$(landed api2)" -eq $((DEPLOYS + 2)) ] || { echo "2 replicas: $(landed api2) of $((DEPLOYS + 2)) landed" >&2; exit 1; }
else
  echo "  deploy API, 2 replicas: skipped (no DATABASE_URL and no /usr/lib/postgresql/*/bin/initdb)"
fi
echo "every deploy landed, one commit each (git rev-list --count)"
