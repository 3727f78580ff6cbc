#!/usr/bin/env bash
# Interop check: atrest-stream writes AES256_GCM_HKDF streaming ciphertexts, Google Tink
# (tink-py, see .ci/requirements.txt) must decrypt them. Run by .ci/run from the repo root,
# with ATREST_CI_PYTHON pointing at a venv python that has tink==1.16.1.
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${ATREST_CI_PYTHON:?ATREST_CI_PYTHON must point to a python with tink==1.16.1}"

ATREST_TINK_EXPORT=$(mktemp "${TMPDIR:-/tmp}/atrest-tink-export.XXXXXXXX")
export ATREST_TINK_EXPORT
trap 'rm -f "$ATREST_TINK_EXPORT"' EXIT

# Tink -> atrest is covered by the Rust tests reading tests/vectors/tink/aes256_gcm_hkdf.json;
# first make sure those committed vectors still decrypt with this Tink.
"$ATREST_CI_PYTHON" tests/vectors/tink/tink_decrypt.py tests/vectors/tink/aes256_gcm_hkdf.json

# atrest -> Tink: the (ignored) Rust test writes atrest-produced ciphertexts to $ATREST_TINK_EXPORT.
cargo test -p atrest-stream --test tink_interop -- --ignored --nocapture
if [ ! -s "$ATREST_TINK_EXPORT" ]; then
  echo "tink_interop test did not write $ATREST_TINK_EXPORT" >&2
  exit 1
fi
"$ATREST_CI_PYTHON" tests/vectors/tink/tink_decrypt.py "$ATREST_TINK_EXPORT"
