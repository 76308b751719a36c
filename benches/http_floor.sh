#!/usr/bin/env bash
# The HTTP front alone against `cepheid serve` (issue 63's CPU goal: 50,000
# decisions a second per core; BENCHMARKS.md, "Session 71"). Opt-in: never
# run by `cargo test`.
#
#   benches/http_floor.sh            # RATES (3000 10000), DUR (10) seconds each
#
# For each rate: `http-floor` (the service's HTTP stack answering one fixed
# decision, `benches/src/bin/http-floor`), `http-floor --parse` (and the
# body parsed as JSON) and `cepheid serve patterns/risk --fsync 5ms`, each
# pinned to core SERVER_CPU (0), under `serve-load` pinned to core LOAD_CPU
# (1) with CONNS (64) HTTP/1.1 connections: the server's CPU time
# (utime + stime of /proc/PID/stat) per 1,000 answers, and the service's
# by thread. The floor's is the least a decision can cost over this
# transport here.
#
# Environment: RATES, DUR, FLOOR_ONLY (no service), CONNS, SERVER_CPU, LOAD_CPU, NO_BUILD,
# CARGO_TARGET_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TGT=${CARGO_TARGET_DIR:-$ROOT/target}
RATES=${RATES:-"3000 10000"}
DUR=${DUR:-10}
CONNS=${CONNS:-64}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cepheid-http-floor.XXXXXX")

if [ -z "${NO_BUILD:-}" ]; then
    cargo build --release -p cepheid-cli --bin cepheid \
        -p cepheid-bench --bin serve-load --bin http-floor >&2
fi
CEPHEID=$TGT/release/cepheid
LOAD=$TGT/release/serve-load
FLOOR=$TGT/release/http-floor

echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(git rev-parse --short HEAD)"

PID=
trap '[ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null; rm -rf "$WORK"; true' EXIT

start() { # NAME COMMAND...: starts it pinned, sets PID and BASE
    local out=$WORK/$1.out
    shift
    taskset -c "$SERVER_CPU" "$@" >"$out" 2>"$out.err" &
    PID=$!
    for _ in $(seq 1 400); do
        BASE=$(sed -n 's/^.*listening on \(http:[^ ]*\).*$/\1/p' "$out" | head -1)
        [ -n "$BASE" ] && return
        sleep 0.05
    done
    echo "no address from $*:"; cat "$out.err"; exit 1
}

ticks() { # PID [COMM]: utime + stime of the process, or of its threads named COMM
    if [ $# -eq 1 ]; then
        awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
    else
        local sum=0 t
        for t in /proc/"$1"/task/*; do
            if [ "$(cat "$t/comm")" = "$2" ]; then
                sum=$((sum + $(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "$t/stat")))
            fi
        done
        echo $sum
    fi
}

measure() { # NAME RATE [THREAD...]: one run against the server at $BASE
    local name=$1 rate=$2
    shift 2
    taskset -c "$LOAD_CPU" "$LOAD" --url "$BASE" --rate 1000 --duration 2 \
        --connections "$CONNS" --cards 100000 --json >/dev/null
    local before after threads=() t out answered
    before=$(ticks "$PID")
    for t in "$@"; do threads+=("$(ticks "$PID" "$t")"); done
    out=$(taskset -c "$LOAD_CPU" "$LOAD" --url "$BASE" --rate "$rate" --duration "$DUR" \
        --connections "$CONNS" --cards 100000 --first 200000 --json | grep '^{')
    after=$(ticks "$PID")
    answered=$(echo "$out" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["status"].get("200", 0))')
    local line
    line=$(awk -v n="$answered" -v d=$((after - before)) -v name="$name" -v rate="$rate" \
        'BEGIN { printf "%-14s %6d req/s  %7d answered  %6.1f µs CPU an answer", name, rate, n, d * 10000 / n }')
    local i=0
    for t in "$@"; do
        line+=$(awk -v n="$answered" -v d=$(($(ticks "$PID" "$t") - threads[i])) -v t="$t" \
            'BEGIN { printf "  %s %.1f", t, d * 10000 / n }')
        i=$((i + 1))
    done
    echo "$line"
}

stop() {
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=
}

for rate in $RATES; do
    start floor "$FLOOR"
    measure floor "$rate" floor-http
    stop
    start parse "$FLOOR" --parse
    measure floor-parse "$rate" floor-http
    stop
    [ -n "${FLOOR_ONLY:-}" ] && continue
    start serve "$CEPHEID" serve patterns/risk --state "$WORK/state-$rate" \
        --listen 127.0.0.1:0 --fsync 5ms
    for _ in $(seq 1 400); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/readyz")" = 200 ] && break
        sleep 0.05
    done
    measure serve "$rate" cepheid-http cepheid-serve-r cepheid-read cepheid-wal cepheid-write
    stop
done
