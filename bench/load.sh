#!/usr/bin/env bash
# Load test: a release build of Tessera on this machine, driven over HTTP by
# wrk with 64 keep-alive connections (the load generator shares the machine,
# so absolute rates depend on the machine and its other load). Every endpoint
# is therefore also reported as a share of `GET /healthz` on the same server
# in the same run: /healthz is HTTP and the kernel alone, the floor. The last
# columns are the CPU time per request (user + system, from /proc) of the
# server, which moves less with the machine's other load than rates do, and
# of wrk, which shares the cores: a share of /healthz cannot pass
# (server + wrk for /healthz) / (server + wrk for the endpoint).
#
#   bench/load.sh                             # SQLite, ES256
#   ALG=RS256 bench/load.sh                   # another signing algorithm
#   DATABASE_URL=postgres://… bench/load.sh   # PostgreSQL (an empty database)
#   DATABASE_URL=auto-postgres bench/load.sh  # a throwaway PostgreSQL cluster
#                                             # (/usr/lib/postgresql/*/bin)
#   SEED=10000000 bench/load.sh               # first fill the tokens table
#   DURATION=30s CONNECTIONS=64 bench/load.sh
#   BIN=path/to/tessera bench/load.sh         # a given build (A/B runs)
#   ROUNDS=2 bench/load.sh                    # repeat the sequence
#   ASSERTIONS=300000 bench/load.sh           # private_key_jwt assertions to
#                                             # pre-sign per round (one per request)
#
# SEED=N inserts N client-credentials token records straight into the
# database before the server starts (one bulk SQL insert per million rows,
# the same columns, values of the same size and the same indexes as records
# the server writes), so throughput can be shown against table size. The
# rows are those of a day's traffic: created over the last 24 hours, each
# expiring an hour after it was created (so retention keeps them all), with
# ids below today's UUIDv7s. New records then go to the end of every index,
# as they do in a table filled by the server; keys sorting after the new
# ones would make each insert split pages in the middle of the indexes.
#
# The token endpoint is measured twice: with a client secret (HTTP Basic)
# and with private_key_jwt (an ES256 client assertion). Every assertion is
# single-use, so ASSERTIONS of them are signed before the run (python3 with
# the `cryptography` package) and each wrk thread walks through its own file;
# should a run outlast them, the replays show up as errors.
#
# Needs wrk (apt-get install wrk), curl, python3 (with `cryptography`), and
# sqlite3 or psql.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 1; }

ALG=${ALG:-ES256}
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
SEED=${SEED:-0}
ROUNDS=${ROUNDS:-1}
ASSERTIONS=${ASSERTIONS:-150000}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  BIN=$target/release/tessera
fi
BIN=$(realpath "$BIN")

work=$(mktemp -d)
server=
pgdata=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  if [ -n "$pgdata" ]; then as_pg "$pgbin/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

DATABASE_URL=${DATABASE_URL:-sqlite://$work/tessera.db?mode=rwc}
if [ "$DATABASE_URL" = auto-postgres ]; then
  pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -x "$pgbin/initdb" ] || { echo "no PostgreSQL under /usr/lib/postgresql" >&2; exit 1; }
  pgdata=$work/pg/data pgport=$(free_port)
  mkdir -p "$work/pg"
  [ "$(id -u)" = 0 ] && chown -R postgres: "$work" && chmod 755 "$work"
  as_pg "$pgbin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
  # Defaults, except a socket in the work directory and a bigger buffer pool.
  as_pg "$pgbin/pg_ctl" -D "$pgdata" -l "$work/pg/log" -w start \
    -o "-p $pgport -k $work/pg -c listen_addresses=127.0.0.1 -c shared_buffers=256MB -c max_wal_size=4GB" >/dev/null
  DATABASE_URL=postgres://postgres@127.0.0.1:$pgport/postgres
fi
export TESSERA_DATABASE_URL=$DATABASE_URL
case $TESSERA_DATABASE_URL in postgres*) backend=postgres ;; *) backend=sqlite ;; esac
export TESSERA_MASTER_KEY=${TESSERA_MASTER_KEY:-$(head -c 32 /dev/urandom | base64)}
export TESSERA_SIGNING_ALG=$ALG TESSERA_LOG=warn
port=$(free_port)
export TESSERA_LISTEN=127.0.0.1:$port
base=http://127.0.0.1:$port
sql() {
  if [ $backend = postgres ]; then psql -q -v ON_ERROR_STOP=1 "$TESSERA_DATABASE_URL" -Atc "$1"
  else f=${TESSERA_DATABASE_URL#sqlite://}; sqlite3 -bail -cmd ".timeout 10000" "${f%%\?*}" "$1"; fi
}

cd "$work"
"$BIN" migrate
client=bench-$RANDOM
secret=$("$BIN" machine-users create --username "$client" --scope profile --scope introspect)
"$BIN" keys list >/dev/null # creates the signing key the seeded rows refer to

if [ "$SEED" -gt 0 ]; then
  echo "seeding $SEED client-credentials token records…"
  started=$(date +%s)
  owner=$(sql "select id from principals where username = '$client'" | head -1)
  done_rows=0
  while [ $done_rows -lt "$SEED" ]; do
    n=$(( SEED - done_rows < 1000000 ? SEED - done_rows : 1000000 ))
    if [ $backend = postgres ]; then
      sql "insert into tokens (id, jti, kind, owner_id, name, active_name, description, scopes, digest, kid, created_at, expires_at, hint)
        select u, u::text, 'client_credentials', '$owner', 'client_credentials', null, '', 'introspect profile',
               encode(sha256(int8send(i)), 'hex'), (select kid from signing_keys where state = 'active' limit 1),
               date_trunc('second', now() - interval '1 day' + i * interval '1 day' / $SEED),
               date_trunc('second', now() + interval '1 hour' - interval '1 day' + i * interval '1 day' / $SEED),
               '…' || substr(md5(i::text), 1, 4)
        from (select i, lpad(to_hex(i), 32, '0')::uuid as u from generate_series($done_rows + 1, $done_rows + $n) as i) s"
    else
      # UUIDs as 16-byte blobs and times as RFC 3339 text, as sqlx stores them
      # (sqlite3 before 3.41 has no unhex(), hence the digits as bytes).
      sql "pragma cache_size = -65536; begin;
        with recursive s(i) as (select $done_rows + 1 union all select i + 1 from s where i < $done_rows + $n)
        insert into tokens (id, jti, kind, owner_id, name, active_name, description, scopes, digest, kid, created_at, expires_at, hint)
        select cast(char(1) || printf('%015d', i) as blob), -- 16 bytes, below today's UUIDv7s
               printf('00000000-0000-0000-0000-%012x', i),
               'client_credentials', (select id from principals where username = '$client'),
               'client_credentials', null, '', 'introspect profile',
               lower(hex(randomblob(32))), (select kid from signing_keys where state = 'active' limit 1),
               strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-86400 seconds', printf('+%d seconds', i * 86400 / $SEED)),
               strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-82800 seconds', printf('+%d seconds', i * 86400 / $SEED)),
               '…' || substr(hex(randomblob(2)), 1, 4)
        from s;
        commit;" >/dev/null
    fi
    done_rows=$(( done_rows + n ))
    printf '  %d rows (%d s)\n' $done_rows $(( $(date +%s) - started ))
  done
  [ $backend = postgres ] && sql "vacuum analyze tokens" >/dev/null
fi

"$BIN" serve > server.log 2>&1 &
server=$!
for _ in $(seq 100); do curl -fs "$base/healthz" >/dev/null && break; sleep 0.1; done

basic=$(printf '%s:%s' "$client" "$secret" | base64 -w0)
token=$(curl -fs -u "$client:$secret" -d grant_type=client_credentials "$base/oauth2/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

# private_key_jwt: the same client gets a P-256 key; assertions are signed now.
"$BIN" users create --username bench-admin --admin --password-stdin <<<"bench-admin-password-$RANDOM" >/dev/null
admin=$("$BIN" tokens create --username bench-admin --name bench --scope admin:read --scope admin:write)
client_uuid=$(curl -fs -H "Authorization: Bearer $admin" "$base/api/v1/machine-users?limit=500" \
  | python3 -c 'import json,sys; print([m["id"] for m in json.load(sys.stdin)["items"] if m["username"] == sys.argv[1]][0])' "$client")
# The assertions' `aud`: the token endpoint as the server names it.
token_url=$(curl -fs "$base/.well-known/oauth-authorization-server" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token_endpoint"])')
echo "signing $ASSERTIONS client assertions…"
python3 - "$client" "$token_url" "$ASSERTIONS" "$THREADS" "$ROUNDS" <<'PY'
import base64, json, sys, time, uuid
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
client, token_url, count, threads, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
key = ec.generate_private_key(ec.SECP256R1())
pub = key.public_key().public_numbers()
jwk = {"kty": "EC", "crv": "P-256", "kid": "bench", "x": b64(pub.x.to_bytes(32, "big")), "y": b64(pub.y.to_bytes(32, "big"))}
json.dump({"keys": [jwk]}, open("jwks.json", "w"))
head = b64(json.dumps({"alg": "ES256", "kid": "bench", "typ": "JWT"}).encode())
now = int(time.time())
files = [open(f"assertions.{r + 1}.{t}", "w") for r in range(rounds) for t in range(threads)]
for i in range(count * rounds):
    claims = {"iss": client, "sub": client, "aud": token_url, "iat": now, "exp": now + 3000, "jti": str(uuid.uuid4())}
    signing_input = head + "." + b64(json.dumps(claims).encode())
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    jwt = signing_input + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    files[i % len(files)].write("grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=" + jwt + "\n")
PY
curl -fs -X PUT -H "Authorization: Bearer $admin" -H "Content-Type: application/json" \
  --data-binary @jwks.json "$base/api/v1/machine-users/$client_uuid/jwks" >/dev/null
# Warm the validation and client-authentication caches.
curl -fs -H "Authorization: Bearer $token" "$base/api/v1/me" >/dev/null
curl -fs -u "$client:$secret" -d "token=$token" "$base/oauth2/introspect" >/dev/null

cat > healthz.lua <<LUA
LUA
cat > token.lua <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $basic"
LUA
cat > token_pkjwt.lua <<'LUA'
-- One pre-signed assertion per request, each thread (and round) from its
-- own file: assertions.ROUND.THREAD, ROUND given after `--`.
local threads = 0
setup = function(thread)
  thread:set("index", threads)
  threads = threads + 1
end
init = function(args)
  bodies = {}
  for line in io.lines("assertions." .. args[1] .. "." .. index) do bodies[#bodies + 1] = line end
  n = 0
end
request = function()
  n = n % #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded"}, bodies[n])
end
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
# Prints the report's numbers as: requests/s, p99 in ms, non-2xx count.
summary_lua='done = function(summary, latency, requests)
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %.0f %.2f %d %.3f\n", summary.requests / (summary.duration / 1e6), latency:percentile(99) / 1000, bad, summary.duration / 1e6))
end'
for f in healthz token token_pkjwt me introspect; do printf '%s\n' "$summary_lua" >> $f.lua; done

# The server's CPU time so far (user + system), in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
# The CPU time of a shell's finished children (wrk among them), in clock ticks.
child_ticks() { awk '{print $16 + $17}' "/proc/$1/stat"; }
measure() { # script path [round] → "req/s p99 errors µs-of-server-CPU µs-of-wrk-CPU" per request
  local before after wrk_before wrk_after shell=$BASHPID
  before=$(cpu_ticks) wrk_before=$(child_ticks "$shell")
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$1.lua" "$base$2" -- "${3:-1}" > wrk.out
  after=$(cpu_ticks) wrk_after=$(child_ticks "$shell")
  # $5 is the run's length in seconds, so $2 * $5 is the requests served.
  awk -v ticks=$((after - before)) -v wrk=$((wrk_after - wrk_before)) -v hz="$(getconf CLK_TCK)" '/^RESULT/ {
    n = $2 * $5
    printf "%s %s %s %.0f %.0f\n", $2, $3, $4, (n > 0 ? ticks / hz * 1e6 / n : 0), (n > 0 ? wrk / hz * 1e6 / n : 0)
  }' wrk.out
}
rows() { sql "select count(*) from tokens" 2>/dev/null | tail -1; }

echo "== $ALG, $backend, $(rows) token records, $CONNECTIONS connections, $DURATION per endpoint, $(nproc) cores"
printf '%-46s %10s %9s %11s %9s %9s\n' endpoint "req/s" "p99 ms" "of /healthz" "CPU µs" "wrk µs"
for round in $(seq "$ROUNDS"); do
  read -r floor p99 bad cpu wrk < <(measure healthz /healthz)
  printf '%-46s %10s %9s %11s %9s %9s\n' "GET /healthz (floor)" "$floor" "$p99" "100%" "$cpu" "$wrk"
  for e in "token POST /oauth2/token (every token recorded)" "token_pkjwt POST /oauth2/token (private_key_jwt, ES256)" "me GET /api/v1/me (Bearer)" "introspect POST /oauth2/introspect"; do
    read -r script name <<<"$e"
    path=${name#* }; path=${path%% *}
    read -r rate p99 bad cpu wrk < <(measure "$script" "$path" "$round")
    share=$(awk -v a="$rate" -v b="$floor" 'BEGIN {printf "%.0f%%", 100 * a / b}')
    printf '%-46s %10s %9s %11s %9s %9s%s\n' "$name" "$rate" "$p99" "$share" "$cpu" "$wrk" "$([ "$bad" != 0 ] && echo "  ($bad errors)")"
  done
done
echo "server memory: peak $(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' /proc/$server/status), now $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$server/status)"
echo "token records now: $(rows)"
