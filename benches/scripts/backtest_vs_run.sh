#!/usr/bin/env bash
# Issue 42's "a backtest runs at the speed of `cepheid run` over the same
# file" (BENCHMARKS.md, "Backtest at run's speed (issue 42, session 53)"),
# opt-in, for one or more builds of the command (e.g. a branch's base and
# its head):
#
# 1. instructions (callgrind, every thread, and the run's own thread, the
#    first listed by --separate-threads) of `run RULES --events head.jsonl
#    --no-progress --output FILE` and `backtest RULES --events head.jsonl
#    --html FILE` over the first 100,000 of the events;
# 2. wall, user and system time and RSS of the same over the 1,000,000
#    events, REPS repetitions interleaved (builds, rules, run then backtest).
#
# RULES: P = patterns/*.cep; R = P and a pattern raising an alert per event
# (as backtest_report.sh).
#
#   cargo build --release --bin cepheid --example generate
#   benches/scripts/backtest_vs_run.sh REPS BIN [BIN...]
#
# Needs valgrind and GNU time; CEPHEID_GENERATE as in backtest_report.sh.
set -euo pipefail
reps=${1:?REPS}
shift
generate=${CEPHEID_GENERATE:-target/release/examples/generate}
dir=$(mktemp -d /tmp/backtest-vs-run.XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/P" "$dir/R"
cp patterns/*.cep "$dir/P/"
cp patterns/*.cep "$dir/R/"
cat >"$dir/R/every_event.cep" <<'EOF'
/// An alert per event.
pattern every_event {
    match a
    where a: ts > 0
}
EOF
"$generate" --seed 1 --events 1000000 >"$dir/events.jsonl"
head -100000 "$dir/events.jsonl" >"$dir/head.jsonl"

# The instructions of every thread, and of the first (the run's).
count() {
  local out=$1
  shift
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out" "$@" \
    >/dev/null 2>"$out.err"
  local total main
  total=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out.err")
  main=$(sed -n 's/^summary: //p' "$out-01")
  echo "$total $main"
}
for bin in "$@"; do
  for rules in P R; do
    read -r run_total run_main < <(count "$dir/cg-run" "$bin" run "$dir/$rules" \
      --events "$dir/head.jsonl" --no-progress --output "$dir/run.jsonl")
    read -r bt_total bt_main < <(count "$dir/cg-bt" "$bin" backtest "$dir/$rules" \
      --events "$dir/head.jsonl" --html "$dir/bt.html")
    echo "$bin $rules instructions: run $run_total (its thread $run_main)," \
      "backtest $bt_total (its run's thread $bt_main)"
    rm -f "$dir"/cg-*
  done
done

for ((r = 1; r <= reps; r++)); do
  for bin in "$@"; do
    for rules in P R; do
      /usr/bin/time -f "$bin $rules run: %e s wall, %U s user, %S s system, %M KB" \
        "$bin" run "$dir/$rules" --events "$dir/events.jsonl" --no-progress \
        --output "$dir/run.jsonl" 2>&1 | tail -1
      /usr/bin/time -f "$bin $rules backtest: %e s wall, %U s user, %S s system, %M KB" \
        "$bin" backtest "$dir/$rules" --events "$dir/events.jsonl" --html "$dir/bt.html" \
        2>&1 >/dev/null | tail -1
    done
  done
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
done
