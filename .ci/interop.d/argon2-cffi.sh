#!/usr/bin/env bash
# atrest-password -> argon2-cffi: Rust hashes passwords (several policies, incl. the OWASP and
# RFC 9106 presets and a peppered hash), the reference C implementation verifies every one.
# (The other direction, argon2-cffi -> atrest, is crates/atrest-password/tests/peer_vectors.rs.)
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${ATREST_CI_PYTHON:-python3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ATREST_INTEROP_OUT="$out" cargo test --locked -p atrest-password --test interop_export -- --ignored --nocapture
"$python" tests/vectors/argon2-cffi/verify_atrest.py "$out/atrest-password.json"
