#!/usr/bin/env bash
# Kafka vs file on the `ab` stream, or `many` with WORKLOAD=many (issue 24;
# BENCHMARKS.md, "Kafka in, Kafka out"): the stream written by cepheid-bench, produced to a topic of
# a tansu broker started here (in memory, one partition), then `cepheid
# run` file to file, topic to topic without checkpoints (idempotent) and
# exactly once with --checkpoint-every 100ms / 1s / 10s, and file to file
# with the same checkpoints. From the repository's root, after
#   cargo build --release --bin cepheid --example kafka_produce && cargo build --release -p cepheid-bench
# (BIN=another target/release to use other binaries; EVENTS=N; PORT=P;
# WORKLOAD=ab or many; EVERIES="1s 10s" for other checkpoint intervals;
# WORKERS=N to run every cepheid with --workers N).
set -euo pipefail
BIN=${BIN:-target/release}
TANSU=$(bash .ci/install-broker | tail -1)
W=$(mktemp -d /tmp/cepheid-kafka-bench.XXXXXX)
PORT=${PORT:-19399}
B=127.0.0.1:$PORT
WL=${WORKLOAD:-ab}
SCALE=${WORKERS:+--workers $WORKERS}
"$BIN/cepheid-bench" --write "$W" --events ${EVENTS:-1000000} "$WL" >/dev/null
"$TANSU" broker --listener-url tcp://$B --advertised-listener-url tcp://$B > "$W/broker.log" 2>&1 &
BROKER=$!
trap 'kill $BROKER' EXIT
sleep 1
topic() { "$TANSU" topic create "$1" --broker tcp://$B --partitions 1 >/dev/null; }
topic "$WL"
"$BIN/examples/kafka_produce" $B "$WL" "$W/$WL.jsonl"
cd "$W"
t() { /usr/bin/time -f "$1: wall %e s, user %U s, sys %S s, maxrss %M KB" "${@:2}" 2>&1 | grep -E "^$1|^cepheid: [0-9]" ; }
t file "$BIN/cepheid" run $SCALE $WL.cep --events $WL.jsonl --output out.jsonl --no-progress
for i in 1 2 3; do t file "$BIN/cepheid" run $SCALE $WL.cep --events $WL.jsonl --output out.jsonl --no-progress; done
for i in 1 2 3; do topic out$i; t kafka-idempotent "$BIN/cepheid" run $SCALE $WL.cep --events kafka://$B/$WL --kafka-until end --output kafka://$B/out$i --no-progress; done
for every in ${EVERIES:-100ms 1s 10s}; do
  topic out-$every; topic marker-$every
  t "kafka-exactly-once-$every" "$BIN/cepheid" run $SCALE $WL.cep --events kafka://$B/$WL --kafka-until end --output kafka://$B/out-$every --no-progress \
     --checkpoint ck-$every --checkpoint-every $every --kafka-marker-topic marker-$every
done
for every in ${EVERIES:-100ms 1s 10s}; do
  t "file-checkpoint-$every" "$BIN/cepheid" run $SCALE $WL.cep --events $WL.jsonl --output out-$every.jsonl --no-progress --checkpoint fck-$every --checkpoint-every $every
done
