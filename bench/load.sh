#!/usr/bin/env bash
# Load test: a release build of Tessera on this machine, driven over HTTP by
# wrk with 64 keep-alive connections (the load generator shares the machine).
#
#   bench/load.sh                      # SQLite, ES256
#   ALG=RS256 bench/load.sh            # another signing algorithm
#   DATABASE_URL=postgres://… bench/load.sh   # PostgreSQL (an empty database)
#   DURATION=30s CONNECTIONS=64 bench/load.sh
#
# Needs wrk (apt-get install wrk). Prints requests/s, latency percentiles and
# the server's resident memory.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 1; }

ALG=${ALG:-ES256}
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
cargo build --release --quiet
BIN=$PWD/target/release/tessera

work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
export TESSERA_DATABASE_URL=${DATABASE_URL:-sqlite://$work/tessera.db?mode=rwc}
case $TESSERA_DATABASE_URL in postgres*) backend=postgres ;; *) backend=sqlite ;; esac
export TESSERA_MASTER_KEY=${TESSERA_MASTER_KEY:-$(head -c 32 /dev/urandom | base64)}
export TESSERA_SIGNING_ALG=$ALG TESSERA_LOG=warn
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export TESSERA_LISTEN=127.0.0.1:$port
base=http://127.0.0.1:$port

cd "$work"
"$BIN" migrate
client=bench-$RANDOM
secret=$("$BIN" machine-users create --username "$client" --scope profile --scope introspect)
"$BIN" serve > server.log 2>&1 &
server=$!
for _ in $(seq 100); do curl -fs "$base/healthz" >/dev/null && break; sleep 0.1; done

basic=$(printf '%s:%s' "$client" "$secret" | base64 -w0)
token=$(curl -fs -u "$client:$secret" -d grant_type=client_credentials "$base/oauth2/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

cat > token.lua <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $basic"
LUA
cat > me.lua <<LUA
wrk.headers["Authorization"] = "Bearer $token"
LUA
cat > introspect.lua <<LUA
wrk.method = "POST"
wrk.body = "token=$token"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $basic"
LUA

run() { # name script path
  echo "== $1 ($ALG, $backend, $CONNECTIONS connections, $DURATION)"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$2" "$base$3" \
    | grep -E 'Requests/sec|Latency|^ +(50|90|99)%|Non-2xx|Socket errors'
  echo "   server RSS now: $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$server/status), peak: $(awk '/VmHWM/ {print $2/1024 " MiB"}' /proc/$server/status)"
}
run "client credentials: POST /oauth2/token (every token recorded)" token.lua /oauth2/token
run "Bearer: GET /api/v1/me" me.lua /api/v1/me
run "introspection: POST /oauth2/introspect" introspect.lua /oauth2/introspect
if [ "$backend" = postgres ]; then
  recorded=$(psql "$TESSERA_DATABASE_URL" -Atc 'select count(*) from tokens' 2>/dev/null || echo "?")
else
  recorded=$(sqlite3 "$work/tessera.db" 'select count(*) from tokens' 2>/dev/null || echo "?")
fi
echo "tokens recorded: $recorded"
