#!/usr/bin/env bash
# Soak test: a release build of Tessera driven for minutes with
# client-credentials requests, Bearer calls, introspections, revocations and
# page loads at once; then checks no 5xx, no token lost, memory flat.
#
#   bench/soak.sh                    # 180 s on SQLite, then 180 s on PostgreSQL
#   SECS=300 BACKEND=sqlite bench/soak.sh
#
# The same test runs for 60 s per backend in `cargo test` (tests/it/soak.rs).
# PostgreSQL comes from /usr/lib/postgresql/*/bin, started by the harness.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-180}
case ${BACKEND:-both} in
  sqlite) filter=soak::sqlite ;;
  postgres) filter=soak::postgres ;;
  both) filter=soak:: ;;
  *) echo "BACKEND must be sqlite, postgres or both" >&2; exit 2 ;;
esac
export TESSERA_SOAK_SECS=$SECS TESSERA_REQUIRE_POSTGRES=1
exec cargo test --release --test it -- --nocapture --test-threads=1 "$filter"
