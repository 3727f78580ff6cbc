#!/usr/bin/env bash
# atrest-kms's AWS KMS provider (feature `aws`) against the KMS API of moto's server (pinned in
# .ci/moto-requirements.txt, shared with s3.sh through .ci/lib/moto.sh), on 127.0.0.1 only.
# This script starts one shared server for most tests; the outage test starts, kills and
# restarts its own (on another free port) through ATREST_MOTO_SERVER. moto does not refuse
# Decrypt under a disabled key, so key states are covered by unit tests, not here.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

# shellcheck source=../lib/moto.sh
source .ci/lib/moto.sh
start_moto

# Dummy credentials; everything stays on this machine: no instance metadata, no proxy.
export AWS_ACCESS_KEY_ID=atrest-ci
export AWS_SECRET_ACCESS_KEY=atrest-ci-secret
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL="$MOTO_ENDPOINT"
export AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/dev/null
export AWS_SHARED_CREDENTIALS_FILE=/dev/null
export NO_PROXY=127.0.0.1,localhost
export no_proxy=127.0.0.1,localhost
export ATREST_MOTO_SERVER="$MOTO_BIN"

# The unit tests (no server) and the server tests, in one build.
# --all-features (not just `aws`): one build shared with openbao.sh instead of two.
cargo test -p atrest-kms --all-features --lib --test aws_kms -- --include-ignored
