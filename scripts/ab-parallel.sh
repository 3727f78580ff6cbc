#!/usr/bin/env bash
# Interleaved A/B of the parallel streaming path: runs `peers/atrest_*` of several builds of
# benches/stream.rs, round after round, and prints 2-thread/1-thread ratios per build.
#
#   cargo bench --bench stream --no-run                 # build variant A, then:
#   cp "$(ls -t target/release/deps/stream-* | grep -v '\.d$' | head -1)" /tmp/A
#   ... change the code, rebuild, copy to /tmp/B ...
#   scripts/ab-parallel.sh /tmp/A /tmp/B [ROUNDS]
#
# Ratios within one run are what to compare: on a shared VM absolute figures drift between
# runs (CPU steal).
set -euo pipefail
rounds=5
bins=()
for arg in "$@"; do
  if [[ "$arg" =~ ^[0-9]+$ ]]; then rounds=$arg; else bins+=("$arg"); fi
done
[ ${#bins[@]} -gt 0 ] || { echo "usage: $0 BENCH_BINARY... [ROUNDS]" >&2; exit 2; }
for round in $(seq 1 "$rounds"); do
  for bin in "${bins[@]}"; do
    "$bin" --bench 'peers/atrest_(rustcrypto|ring)(_2_threads)?$' 2>&1 | awk -v v="$(basename "$bin")" -v r="$round" '
      /^[a-z_]+\/[^ ]+/ { name = $1 }
      /thrpt:/ { if (name != "") { g = $4; if ($5 == "MiB/s") g /= 1024; val[name] = g; name = "" } }
      END {
        rc1 = val["peers/atrest_rustcrypto"]; rc2 = val["peers/atrest_rustcrypto_2_threads"]
        r1 = val["peers/atrest_ring"]; r2 = val["peers/atrest_ring_2_threads"]
        printf "round %s %s: rustcrypto %.2f -> %.2f GiB/s (%.2fx)  ring %.2f -> %.2f GiB/s (%.2fx)\n",
          r, v, rc1, rc2, rc2 / rc1, r1, r2, r2 / r1
      }'
  done
done
