# Sourced by the Kafka benchmarks (kafka_profile.sh, kafka_producer.sh),
# from the repository's root, with NAME (the scratch folder's) and PORT
# (the broker's default) set: writes the payment-sized `ab` stream
# (EVENTS=N, default 500,000) into a scratch folder W, starts a tansu
# broker in memory on 127.0.0.1:PORT (B) as BROKER, produces the stream to
# topic `ab`, defines `topic NAME` (creates a one-partition topic), and
# leaves the shell in W. At exit the broker is stopped and W removed
# (KEEP=1 keeps it). BIN: the binaries (default target/release).
BIN=$(realpath "${BIN:-target/release}")
TANSU=$(bash .ci/install-broker | tail -1)
W=$(mktemp -d "/tmp/cepheid-$NAME.XXXXXX")
B=127.0.0.1:$PORT
"$BIN/cepheid-bench" --write "$W" --payments --events "${EVENTS:-500000}" ab >/dev/null 2>&1
"$TANSU" broker --listener-url tcp://$B --advertised-listener-url tcp://$B > "$W/broker.log" 2>&1 &
BROKER=$!
trap 'kill $BROKER; [ -n "${KEEP:-}" ] || rm -rf "$W"' EXIT
sleep 1
topic() { "$TANSU" topic create "$1" --broker tcp://$B --partitions 1 >/dev/null; }
topic ab
"$BIN/examples/kafka_produce" $B ab "$W/ab.jsonl" >/dev/null
cd "$W"
echo "stream: $(wc -l < ab.jsonl) events, $(( $(stat -c %s ab.jsonl) / $(wc -l < ab.jsonl) )) bytes a line"
