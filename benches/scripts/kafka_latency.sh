#!/usr/bin/env bash
# Produce -> committed-alert delay per producer setting (issue 43,
# BENCHMARKS.md, "Kafka: the producer's settings"): for each setting in
# SETTINGS (space-separated; each a comma-separated list of `--kafka`
# properties, `-` for librdkafka's defaults) and each mode (idempotent, and
# exactly once with `--checkpoint-every 1s`), `cepheid run` reads a live
# topic and writes a fresh output topic while `examples/kafka_latency`
# produces PAIRS pairs `a`, `b` a second for SECONDS seconds and reads the
# alerts back with a `read_committed` consumer. The settings are run in
# turn, ROUNDS times, on one broker, so that they are compared within one
# run. From the repository's root, after
#   cargo build --release --bin cepheid --example kafka_latency --example kafka_produce
#   cargo build --release -p cepheid-bench
set -euo pipefail
NAME=kafka-latency PORT=${PORT:-19399} EVENTS=${EVENTS:-1000}
SETTINGS=${SETTINGS:-"- linger.ms=20 linger.ms=20,compression.type=lz4"}
MODES=${MODES:-"idempotent eos"}
PAIRS=${PAIRS:-1000} SECONDS_=${SECONDS_:-20} ROUNDS=${ROUNDS:-2}
# shellcheck source=benches/scripts/kafka_stream.sh
source "$(dirname "$0")/kafka_stream.sh"
cat > lat.cep <<'CEP'
pattern ab {
    partition by k
    within 10s
    match a followed by b
    where
        a: type == "a"
        b: type == "b"
}
CEP
n=0
for round in $(seq "$ROUNDS"); do
  for mode in $MODES; do
    for setting in $SETTINGS; do
      n=$((n + 1))
      topic in$n; topic out$n; topic mk$n
      props=()
      if [ "$setting" != - ]; then
        for p in ${setting//,/ }; do props+=(--kafka "$p"); done
      fi
      eos=()
      [ "$mode" = eos ] && eos=(--checkpoint ck$n --checkpoint-every 1s --kafka-marker-topic mk$n)
      "$BIN/cepheid" run lat.cep --events kafka://$B/in$n --kafka-start latest \
        --output kafka://$B/out$n "${props[@]}" "${eos[@]}" --no-progress 2> run$n.err &
      run=$!
      sleep 3
      printf '%s %-12s %-40s ' "$round" "$mode" "$setting"
      "$BIN/examples/kafka_latency" $B in$n out$n "$PAIRS" "$SECONDS_" | tr '\n' ' '
      echo
      kill $run; wait $run 2>/dev/null || true
    done
  done
done
