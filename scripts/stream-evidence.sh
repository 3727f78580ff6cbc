#!/usr/bin/env bash
# Memory and random-access evidence for atrest STREAM (issue: "memory and random-access
# evidence"). Not a test: it prints figures to quote.
#   scripts/stream-evidence.sh [MiB for the memory run, default 4096] [MiB for random reads, default 1024]
# Needs /usr/bin/time (Debian package `time`) and about 2x the sizes in free space in $TMPDIR.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example stream_evidence
bin=target/release/examples/stream_evidence
mem=${1:-4096}
reads=${2:-1024}
/usr/bin/time -v "$bin" memory "$mem" 2> >(grep -E "Maximum resident set size|Elapsed" >&2)
"$bin" random-reads "$reads"
