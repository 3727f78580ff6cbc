#!/usr/bin/env bash
# Independent from-the-spec Python implementation (cryptography/OpenSSL) opens the frozen
# atrest envelope v1 vectors.
set -euo pipefail
"${ATREST_CI_PYTHON:?set by .ci/run}" tests/vectors/envelope_v1_check.py tests/vectors/envelope_v1.json
