#!/usr/bin/env bash
# CPU-seconds spent reading and decoding the input of `cepheid run`, per
# million events (issue 12's target: at most 0.5).
#
# `cepheid run` reads and decodes on a thread of its own, `cepheid-read`
# (src/input.rs), and matches and writes on the main thread.
# `perf record` samples the run's CPU clock with the thread of each sample;
# this sums the sampled CPU time per thread name.
#
#   cargo build --release --workspace
#   target/release/cepheid-bench --write /tmp/w ab login unpaid
#   benches/scripts/decode_cpu.sh /tmp/w 3 ab login unpaid
#
# Prints, per workload and repetition, the CPU-seconds of each thread and
# the reader's per million events. Needs `perf` (cpu-clock works in VMs
# without hardware counters).
set -euo pipefail
dir=$1 reps=$2
shift 2
bin=${CEPHEID_BIN:-target/release/cepheid}
data=$(mktemp /tmp/decode-cpu.XXXXXX)
trap 'rm -f "$data"' EXIT
for w in "$@"; do
  events=$(wc -l <"$dir/$w.jsonl")
  for ((r = 1; r <= reps; r++)); do
    perf record -q -e cpu-clock -F 4000 -o "$data" -- \
      "$bin" run "$dir/$w.cep" --events "$dir/$w.jsonl" --output /dev/null --no-progress 2>/dev/null
    perf script -i "$data" -F comm,period 2>/dev/null | awk -v w="$w" -v r="$r" -v n="$events" '
      { comm = $1; for (i = 2; i < NF; i++) comm = comm " " $i; cpu[comm] += $NF }
      END {
        line = sprintf("%-8s rep %d:", w, r)
        for (c in cpu) line = line sprintf("  %s %.3f s", c, cpu[c] / 1e9)
        printf "%s  | reader per million events: %.3f CPU-s\n", line, cpu["cepheid-read"] / 1e9 / (n / 1e6)
      }'
  done
done
