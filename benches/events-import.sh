#!/usr/bin/env bash
# Benchmark (not a test): `events import` of a deploy branch of 20,000 commits over
# 5,000 apps (the issue's goal: at most 2 s on 2 cores) into an empty SQLite file, and
# into an empty PostgreSQL database when Debian's server binaries are installed.
#
#   cargo build --release && benches/events-import.sh [path/to/gitops-render]
#
# Needs git, awk and hyperfine; PostgreSQL's binaries for the second figure (a
# throwaway cluster on a Unix socket, as `nobody` when run as root, like the tests).
# The repository is generated with `git fast-import`, as benches/repo.sh does, with the
# trailers and the values.yaml (its `team:`) that import reads.
set -euo pipefail

BIN=${1:-"$(cd "$(dirname "$0")/.." && pwd)/target/release/gitops-render"}
APPS=${APPS:-5000}
COMMITS=${COMMITS:-20000}
RUNS=${RUNS:-5}

for tool in git awk hyperfine; do
  command -v "$tool" >/dev/null || { echo "benches/events-import.sh needs $tool" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "no binary at $BIN: cargo build --release first" >&2; exit 2; }

WORK=$(mktemp -d)
PG_PID=
cleanup() { [ -n "$PG_PID" ] && kill -QUIT "$PG_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
chmod 755 "$WORK"
export HOME=$WORK GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=$WORK/gitconfig
: > "$GIT_CONFIG_GLOBAL"
cd "$WORK"

echo "generating a repository with $APPS apps and $COMMITS commits (git fast-import)..."
git init -q --bare -b main big.git
awk -v apps="$APPS" -v commits="$COMMITS" 'BEGIN {
  srand(42);
  for (c = 1; c <= commits; c++) {
    if (c <= apps) { a = c } else { a = 1 + int(rand() * apps) }
    app = sprintf("app-%04d", a); v = sprintf("1.0.%d", c);
    intent = (c % 50 == 0) ? "rollback" : "deploy";
    msg = sprintf("%s(%s/prod): %s\n\nGitops-App: %s\nGitops-Env: prod\nGitops-Version: %s\nGitops-Intent: %s\nGitops-Actor: bench\nGitops-Source: acme/%s@%07x\nGitops-Source-Time: %s\n", intent, app, v, app, v, intent, app, c, strftime("%Y-%m-%dT%H:%M:%SZ", 1700000000 + c * 60 - 3600, 1));
    printf "commit refs/heads/main\nmark :%d\ncommitter bench <bench@example.com> %d +0000\ndata %d\n%s", c, 1700000000 + c * 60, length(msg), msg;
    if (c > 1) printf "from :%d\n", c - 1;
    vals = sprintf("app: %s\nteam: team-%02d\nversion: %s\n", app, a % 50, v);
    printf "M 100644 inline apps/%s/prod/values.yaml\ndata %d\n%s\n", app, length(vals), vals;
  }
}' | git -C big.git fast-import --quiet
echo "  $(git -C big.git rev-list --count main) commits"

echo
echo "events import into an empty SQLite file ($RUNS runs)"
hyperfine --runs "$RUNS" --prepare "rm -f $WORK/e.sqlite*" \
  "$BIN events import --repo $WORK/big.git --database $WORK/e.sqlite"
echo "  second run (nothing new):"
hyperfine --runs "$RUNS" "$BIN events import --repo $WORK/big.git --database $WORK/e.sqlite"

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$PGBIN" ]; then
  echo "no PostgreSQL binaries: skipped the PostgreSQL figure"
  exit 0
fi
as_pg=()
if [ "$(id -u)" = 0 ]; then as_pg=(setpriv --reuid=65534 --regid=65534 --clear-groups); chown 65534:65534 "$WORK"; fi
"${as_pg[@]}" "$PGBIN/initdb" -D "$WORK/pg" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
"${as_pg[@]}" "$PGBIN/postgres" -D "$WORK/pg" -k "$WORK" -c listen_addresses= -c fsync=off \
  -c synchronous_commit=off >"$WORK/pg.log" 2>&1 &
PG_PID=$!
until "$PGBIN/pg_isready" -q -h "$WORK"; do sleep 0.1; done
URL="postgresql://postgres@$(printf %s "$WORK" | sed 's|/|%2F|g')/postgres"
echo
echo "events import into an empty PostgreSQL database ($RUNS runs)"
hyperfine --runs "$RUNS" \
  --prepare "$PGBIN/psql -q -h $WORK -U postgres -d postgres -c 'DROP TABLE IF EXISTS events, gitops_render_migrations'" \
  "$BIN events import --repo $WORK/big.git --database '$URL'"
