#!/usr/bin/env bash
# CPU time and switches of threads an answer, by thread, of `cepheid serve`
# (issue 63; BENCHMARKS.md, "Session 72"). Opt-in: never run by `cargo test`.
#
#   benches/serve_threads.sh                 # RATE (10000) req/s for DUR (8) s
#   BIN=other/target/release benches/serve_threads.sh   # another build
#
# `cepheid serve patterns/risk --fsync 5ms $EXTRA` pinned to core
# SERVER_CPU (0), `serve-load` (64 HTTP/1.1 connections, 100,000 cards)
# pinned to core LOAD_CPU (1): 2 s at 1,000 req/s, then DUR s at RATE;
# per thread name, the CPU time (utime + stime) and the voluntary and
# involuntary switches over the answers, then the server's time to answer
# (p50, p99, p99.9, max, µs) as serve-load read it.
#
# Environment: RATE, DUR, EXTRA (more arguments to serve), BIN (the folder
# of `cepheid` and `serve-load`; built with NO_BUILD unset), SERVER_CPU,
# LOAD_CPU, CARGO_TARGET_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TGT=${CARGO_TARGET_DIR:-$ROOT/target}
if [ -z "${BIN:-}" ] && [ -z "${NO_BUILD:-}" ]; then
    cargo build --release -p cepheid-cli --bin cepheid -p cepheid-bench --bin serve-load >&2
fi
BIN=${BIN:-$TGT/release}
RATE=${RATE:-10000}
DUR=${DUR:-8}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cepheid-serve-threads.XXXXXX")
PID=
trap '[ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null; rm -rf "$WORK"; true' EXIT

# shellcheck disable=SC2086 # (EXTRA: words on purpose)
taskset -c "$SERVER_CPU" "$BIN/cepheid" serve patterns/risk --state "$WORK/state" \
    --listen 127.0.0.1:0 --fsync 5ms ${EXTRA:-} >"$WORK/out" 2>"$WORK/err" &
PID=$!
BASE=
for _ in $(seq 1 400); do
    BASE=$(sed -n 's/^.*listening on \(http:[^ ]*\).*$/\1/p' "$WORK/out" | head -1)
    [ -n "$BASE" ] && break
    sleep 0.05
done
[ -n "$BASE" ] || { echo "no address:"; cat "$WORK/err"; exit 1; }
for _ in $(seq 1 400); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/readyz")" = 200 ] && break
    sleep 0.05
done

snapshot() { # per thread name: CPU ticks, switches
    for t in /proc/"$PID"/task/*; do
        echo "$(cat "$t/comm") $(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "$t/stat")" \
            "$(awk '/^(non)?voluntary_ctxt_switches/ { s += $2 } END { print s }' "$t/status")"
    done | awk '{ c[$1] += $2; s[$1] += $3 } END { for (k in c) print k, c[k], s[k] }' | sort
}

taskset -c "$LOAD_CPU" "$BIN/serve-load" --url "$BASE" --rate 1000 --duration 2 \
    --connections 64 --cards 100000 --json >/dev/null
snapshot >"$WORK/before"
taskset -c "$LOAD_CPU" "$BIN/serve-load" --url "$BASE" --rate "$RATE" --duration "$DUR" \
    --connections 64 --cards 100000 --first 200000 --json | grep '^{' >"$WORK/load.json"
snapshot >"$WORK/after"
read -r ANSWERED SERVER < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["status"].get("200", 0), ",".join(map(str, d["server_us"])))' "$WORK/load.json")
echo "== $RATE req/s, $ANSWERED answered, $(git rev-parse --short HEAD) ${EXTRA:-}"
join "$WORK/before" "$WORK/after" | awk -v n="$ANSWERED" '
    { c = ($4 - $2) * 10000 / n; s = ($5 - $3) / n; tc += c; ts += s
      if (c > 0.05 || s > 0.005) printf "%-16s %6.1f µs CPU  %5.2f switches an answer\n", $1, c, s }
    END { printf "%-16s %6.1f µs CPU  %5.2f switches an answer\n", "total", tc, ts }'
echo "server p50, p99, p99.9, max (µs): $SERVER"
