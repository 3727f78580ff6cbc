#!/usr/bin/env bash
# Independent from-the-spec Python implementation (cryptography/OpenSSL) decrypts the frozen
# atrest STREAM v1 vectors.
set -euo pipefail
"${ATREST_CI_PYTHON:?set by .ci/run}" tests/vectors/stream_v1_check.py tests/vectors/stream_v1.json
