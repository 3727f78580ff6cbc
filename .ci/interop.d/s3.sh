#!/usr/bin/env bash
# atrest-store over S3: runs object_store's conformance suite against EncryptedStore<AmazonS3>
# pointed at an S3-protocol server on 127.0.0.1 (moto's server, pinned in
# .ci/moto-requirements.txt). s3s-fs 0.14.1 was tried first: it answers a GET of a key that is a
# "directory" on its filesystem (`test_dir` after `test_dir/test_file.json`) with 500 instead
# of 404, which object_store's own suite rejects before reaching anything of ours.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

# shellcheck source=../lib/moto.sh
source .ci/lib/moto.sh
start_moto

export AWS_ACCESS_KEY_ID=atrest-ci
export AWS_SECRET_ACCESS_KEY=atrest-ci-secret
export AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT="$MOTO_ENDPOINT"
export AWS_BUCKET=atrest-store-test
export AWS_ALLOW_HTTP=true

# Create the bucket (moto accepts an unsigned request).
curl -fsS -X PUT "$AWS_ENDPOINT/$AWS_BUCKET" >/dev/null

cargo test -p atrest-store --features s3 --test s3 -- --ignored
