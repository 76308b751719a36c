#!/usr/bin/env bash
# The producer's settings for alerts (issue 43, step 2; BENCHMARKS.md,
# "Kafka: the producer's settings"): topic to topic on the payment-sized
# `ab` stream, one run per setting of `--kafka NAME=VALUE`, and for each
# cepheid's own CPU (user + system, best of ROUNDS=3), the broker's CPU
# during that best run (tansu's user + system from /proc), and the bytes
# that crossed the loopback interface during it (the consumer's fetches
# too: the same in every run, so differences are the producer's). File to
# file first, as the yardstick.
# From the repository's root, after
#   cargo build --release --bin cepheid --example kafka_produce && cargo build --release -p cepheid-bench
# (zstd is not built: rdkafka-sys without its `zstd` feature. BIN=another
# target/release; EVENTS=N; PORT=P; EOS=1 adds
# --checkpoint-every 1s, exactly once, to every topic run, and a
# checkpoint every second to the file run; SETTINGS="- compression.type=none"
# measures those settings instead of session 52's list, each a
# comma-separated list of properties, `-` for cepheid's defaults).
set -euo pipefail
NAME=kafka-producer PORT=${PORT:-19399}
# shellcheck source=benches/scripts/kafka_stream.sh
source "$(dirname "$0")/kafka_stream.sh"
# The broker's CPU so far, in clock ticks; the loopback's bytes so far.
ticks() { awk '{print $14 + $15}' /proc/$BROKER/stat; }
lo_bytes() { awk '/^ *lo:/ {printf "%.0f", $2 + $10}' /proc/net/dev; }
hz=$(getconf CLK_TCK)
n=0
measure() { # NAME ARGS...: best of three
  local name=$1; shift
  local best= best_broker= best_lo=
  for i in $(seq "${ROUNDS:-3}"); do
    n=$((n + 1))
    local cmd
    if [ "$name" = file ]; then
      cmd=("$BIN/cepheid" run ab.cep --events ab.jsonl --output out$n.jsonl --no-progress)
      [ -z "${EOS:-}" ] || cmd+=(--checkpoint fck$n --checkpoint-every 1s)
    else
      topic out$n
      cmd=("$BIN/cepheid" run ab.cep --events kafka://$B/ab --kafka-until end
        --output kafka://$B/out$n --no-progress "$@")
      [ -z "${EOS:-}" ] || cmd+=(--checkpoint ck$n --checkpoint-every 1s)
    fi
    local t0 l0
    t0=$(ticks); l0=$(lo_bytes)
    /usr/bin/time -o time.txt -f "%U %S" "${cmd[@]}" >/dev/null 2>&1
    local broker lo cpu
    broker=$(( $(ticks) - t0 )); lo=$(( $(lo_bytes) - l0 ))
    cpu=$(awk '{printf "%.2f", $1 + $2}' time.txt)
    if [ -z "$best" ] || awk "BEGIN {exit !($cpu < $best)}"; then
      best=$cpu; best_broker=$broker; best_lo=$lo
    fi
  done
  printf '%-44s cepheid %5s s  broker %5.2f s  loopback %6.1f MB\n' "$name" "$best" \
    "$(awk "BEGIN {print $best_broker / $hz}")" "$(awk "BEGIN {print $best_lo / 1e6}")"
}
measure file
if [ -n "${SETTINGS:-}" ]; then
  for setting in $SETTINGS; do
    props=()
    if [ "$setting" != - ]; then
      for p in ${setting//,/ }; do props+=(--kafka "$p"); done
    fi
    measure "$setting" ${props[@]+"${props[@]}"}
  done
  exit 0
fi
measure "librdkafka's defaults (linger.ms=5, none)" --kafka linger.ms=5 --kafka compression.type=none
for linger in 20 100; do
  measure "linger.ms=$linger" --kafka linger.ms=$linger
done
measure "linger.ms=100 batch.size=1000000" --kafka linger.ms=100 --kafka batch.size=1000000
for codec in lz4 gzip; do
  measure "linger.ms=100 compression=$codec" --kafka linger.ms=100 --kafka compression.type=$codec
done
