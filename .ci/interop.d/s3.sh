#!/usr/bin/env bash
# atrest-store over S3: runs object_store's conformance suite against EncryptedStore<AmazonS3>
# pointed at an S3-protocol server on 127.0.0.1 (moto's server, pinned in
# .ci/s3-requirements.txt). s3s-fs 0.14.1 was tried first: it answers a GET of a key that is a
# "directory" on its filesystem (`test_dir` after `test_dir/test_file.json`) with 500 instead
# of 404, which object_store's own suite rejects before reaching anything of ours.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

venv="$root/target/s3-venv"
if [ ! -x "$venv/bin/moto_server" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r .ci/s3-requirements.txt

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)

export AWS_ACCESS_KEY_ID=atrest-ci
export AWS_SECRET_ACCESS_KEY=atrest-ci-secret
export AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT="http://127.0.0.1:$port"
export AWS_BUCKET=atrest-store-test
export AWS_ALLOW_HTTP=true

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
# Create the bucket (moto accepts an unsigned request).
curl -fsS -X PUT "$AWS_ENDPOINT/$AWS_BUCKET" >/dev/null

cargo test -p atrest-store --features s3 --test s3 -- --ignored
