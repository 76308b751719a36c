#!/usr/bin/env bash
# Where cepheid's CPU goes, file to file against topic to topic (issue 43;
# BENCHMARKS.md, "Kafka: where the CPU goes"), on the payment-sized `ab`
# stream (`cepheid-bench --write --payments`: about 240 bytes a line). For
# each of file to file, topic to topic (idempotent) and topic to topic
# exactly once (--checkpoint-every 1s): cepheid's own CPU (user + system,
# best of three; the broker's is not counted), then one run under
# `perf record` (software clock, DWARF call graphs) broken down by thread
# and by stage (each stage's inclusive share of the run's samples).
# From the repository's root, after
#   cargo build --release --bin cepheid --example kafka_produce && cargo build --release -p cepheid-bench
# (BIN=another target/release to use other binaries; EVENTS=N; PORT=P;
# KEEP=1 keeps the folder with the perf data; needs `perf`).
set -euo pipefail
NAME=kafka-profile PORT=${PORT:-19398}
# shellcheck source=benches/scripts/kafka_stream.sh
source "$(dirname "$0")/kafka_stream.sh"
n=0
# prepare KIND: the command of a run of KIND in CMD (a fresh output topic
# and checkpoint folder each time).
prepare() {
  n=$((n + 1))
  case $1 in
    file) CMD=("$BIN/cepheid" run ab.cep --events ab.jsonl --output out.jsonl --no-progress) ;;
    kafka) topic out$n
      CMD=("$BIN/cepheid" run ab.cep --events kafka://$B/ab --kafka-until end --output kafka://$B/out$n --no-progress) ;;
    kafka-eos) topic out$n
      CMD=("$BIN/cepheid" run ab.cep --events kafka://$B/ab --kafka-until end --output kafka://$B/out$n --no-progress --checkpoint ck$n --checkpoint-every 1s) ;;
  esac
}
for kind in file kafka kafka-eos; do
  best=
  for i in 1 2 3; do
    prepare $kind
    /usr/bin/time -o time.txt -f "%U %S" "${CMD[@]}" >/dev/null 2>&1
    cpu=$(awk '{printf "%.2f", $1 + $2}' time.txt)
    best=$(printf '%s\n%s\n' "$cpu" "${best:-$cpu}" | sort -n | head -1)
  done
  echo "$kind: cepheid CPU best of 3: $best s"
done
for kind in file kafka kafka-eos; do
  prepare $kind
  perf record -q -e cpu-clock -F 1999 --call-graph dwarf,16384 -o $kind.data -- "${CMD[@]}" >/dev/null 2>&1
  perf report -i $kind.data --no-children --sort comm --stdio -g none -n 2>/dev/null | grep -E '^ +[0-9]' > $kind.threads || true
  echo "== $kind: $(awk '{s += $2} END {print s}' $kind.threads) samples at 1999 a second; by thread"
  head -6 $kind.threads
  echo "-- by stage (inclusive; stages nest: decode is inside the reader)"
  perf report -i $kind.data --children --sort symbol --stdio -g none 2>/dev/null > $kind.txt
  for stage in \
    "reader thread|cepheid_runtime::source::file::read( |$)" \
    "  file read (syscalls)|LineReader<R>::refill" \
    "  Kafka consume (rdkafka poll, copy)|cepheid_kafka::source::KafkaSource::read( |$)" \
    "  decode|cepheid_engine::io::decode::Decoder::decode( |$)" \
    "matching thread|cepheid_runtime::driver::Runtime::run( |$)" \
    "  engine (with its output)|Core<E,A>::process_event( |$)" \
    "  output: format a record|cepheid_engine::io::jsonl::Formatter::record( |$)" \
    "  output: Kafka sink write|cepheid_kafka::sink::KafkaSink::write( |$)" \
    "    rd_kafka_producev|rd_kafka_producev( |$)" \
    "  checkpoints and commits|Session>::settle( |$)" \
    "file writer thread|cepheid_runtime::background::write_blocks( |$)" \
    "librdkafka: producer (broker thread)|rd_kafka_broker_producer_serve" \
    "librdkafka: consumer (broker thread)|rd_kafka_broker_consumer_serve" \
    "clock_gettime (all threads)|__vdso_clock_gettime( |$)"; do
    name=${stage%%|*}
    pattern=${stage#*|}
    share=$( (grep -E "\] .*$pattern" $kind.txt || true) | head -1 | awk '{print $1}')
    printf '  %-42s %s\n' "$name" "${share:--}"
  done
done
