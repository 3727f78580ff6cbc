#!/usr/bin/env bash
# Interleaved A/B of the parallel streaming path: runs the two-thread rows of `peers` of
# several builds of benches/stream.rs, round after round, and prints per build the
# 2-thread/1-thread ratios of atrest's Encryptor (into a sink; one 64 MiB write, and 8 KiB
# writes as from `io::copy`) and Decryptor (8 KiB reads) next to those of the bare AEAD over
# the same 64 MiB buffer
# (`raw_<provider>_in_place[_2_threads]`, the ceiling).
#
#   cargo bench --bench stream --no-run                 # build variant A, then:
#   cp "$(ls -t target/release/deps/stream-* | grep -v '\.d$' | head -1)" /tmp/A
#   ... change the code, rebuild, copy to /tmp/B ...
#   scripts/ab-parallel.sh /tmp/A /tmp/B [ROUNDS]
#
# One build is fine too (`scripts/ab-parallel.sh /tmp/A 5`): the ratios of each round come
# from one process minutes apart, so CPU steal between rounds cancels partly. Absolute
# figures drift between runs on a shared VM; compare ratios.
set -euo pipefail
rounds=5
bins=()
for arg in "$@"; do
  if [[ "$arg" =~ ^[0-9]+$ ]]; then rounds=$arg; else bins+=("$arg"); fi
done
[ ${#bins[@]} -gt 0 ] || { echo "usage: $0 BENCH_BINARY... [ROUNDS]" >&2; exit 2; }
for round in $(seq 1 "$rounds"); do
  for bin in "${bins[@]}"; do
    "$bin" --bench 'peers/(atrest|raw)_(rustcrypto|ring)(_in_place|_8k_writes|_decryptor)?(_2_threads)?$' 2>&1 |
      awk -v v="$(basename "$bin")" -v r="$round" '
      /^[a-z_]+\/[^ ]+/ { name = $1 }
      /thrpt:/ { if (name != "") { g = $4; if ($5 == "MiB/s") g /= 1024; val[name] = g; name = "" } }
      END {
        for (i = 1; i <= 2; i++) {
          p = (i == 1) ? "rustcrypto" : "ring"
          a1 = val["peers/atrest_" p]; a2 = val["peers/atrest_" p "_2_threads"]
          s1 = val["peers/atrest_" p "_8k_writes"]; s2 = val["peers/atrest_" p "_8k_writes_2_threads"]
          d1 = val["peers/atrest_" p "_decryptor"]; d2 = val["peers/atrest_" p "_decryptor_2_threads"]
          c1 = val["peers/raw_" p "_in_place"]; c2 = val["peers/raw_" p "_in_place_2_threads"]
          printf "round %s %s %-10s atrest %.2f -> %.2f GiB/s (%.2fx)  8k writes %.2f -> %.2f (%.2fx)  decryptor %.2f -> %.2f (%.2fx)  raw %.2f -> %.2f GiB/s (%.2fx)\n",
            r, v, p, a1, a2, a2 / a1, s1, s2, s2 / s1, d1, d2, d2 / d1, c1, c2, c2 / c1
        }
      }'
  done
done
