#!/usr/bin/env bash
# atrest-kms's AWS KMS provider (feature `aws`) against the KMS API of moto's server (pinned in
# .ci/aws-kms-requirements.txt, the same pin as .ci/s3-requirements.txt), on 127.0.0.1 only.
# This script starts one shared server for most tests; the outage test starts, kills and
# restarts its own (on another free port) through ATREST_MOTO_SERVER. moto does not refuse
# Decrypt under a disabled key, so key states are covered by unit tests, not here.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

venv="$root/target/aws-kms-venv"
if [ ! -x "$venv/bin/moto_server" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r .ci/aws-kms-requirements.txt

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)

# Dummy credentials; everything stays on this machine: no instance metadata, no proxy.
export AWS_ACCESS_KEY_ID=atrest-ci
export AWS_SECRET_ACCESS_KEY=atrest-ci-secret
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/dev/null
export AWS_SHARED_CREDENTIALS_FILE=/dev/null
export NO_PROXY=127.0.0.1,localhost
export no_proxy=127.0.0.1,localhost
export ATREST_MOTO_SERVER="$venv/bin/moto_server"

"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done

# The unit tests (no server) and the server tests, in one build.
# --all-features (not just `aws`): one build shared with openbao.sh instead of two.
cargo test -p atrest-kms --all-features --lib --test aws_kms -- --include-ignored
