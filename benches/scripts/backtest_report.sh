#!/usr/bin/env bash
# Issue 42's two speed figures for `cepheid backtest` (BENCHMARKS.md,
# "Backtest report (issue 42, session 52)"), opt-in:
#
# 1. the HTML report of about a million alerts drawn by headless chromium
#    (the repository's patterns plus one that raises an alert per event,
#    over 1,000,000 generated events): the wall time of `chromium
#    --dump-dom` (start-up included) and the page's own figure, the time
#    from its navigation's start to its plots drawn (`#drawn`,
#    performance.now());
# 2. a backtest against `cepheid run` over the same file (the records to a
#    file, as the backtest writes them): wall, user and system CPU of each
#    repetition, interleaved.
#
#   cargo build --release --bin cepheid --example generate
#   benches/scripts/backtest_report.sh [REPS]
#
# Needs /usr/bin/chromium (.ci/install-browser) and GNU time.
set -euo pipefail
reps=${1:-3}
bin=${CEPHEID_BIN:-target/release/cepheid}
generate=${CEPHEID_GENERATE:-target/release/examples/generate}
dir=$(mktemp -d /tmp/backtest-report.XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/rules" "$dir/profile"
cp patterns/*.cep "$dir/rules/"
cat >"$dir/rules/every_event.cep" <<'EOF'
/// An alert per event: a million alerts from a million events.
pattern every_event {
    match a
    where a: ts > 0
}
EOF
"$generate" --seed 1 --events 1000000 >"$dir/events.jsonl"

/usr/bin/time -f "backtest --html: %e s wall, %U s user, %S s system, %M KB" \
  "$bin" backtest "$dir/rules" --events "$dir/events.jsonl" --html "$dir/report.html" \
  >"$dir/table.txt"
cat "$dir/table.txt"
echo "alerts: $(awk 'NR > 2 && $1 != "labels:" { n += $2 } END { print n }' "$dir/table.txt")," \
  "page: $(stat -c %s "$dir/report.html") bytes"
for ((r = 1; r <= reps; r++)); do
  start=$(date +%s.%N)
  /usr/bin/chromium --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-background-networking --user-data-dir="$dir/profile" \
    --dump-dom "file://$dir/report.html" >"$dir/dom.html" 2>/dev/null
  end=$(date +%s.%N)
  drawn=$(sed -n 's/.*<span id="drawn">\([^<]*\)<.*/\1/p' "$dir/dom.html")
  bars=$(grep -o '<rect class="bar"' "$dir/dom.html" | wc -l)
  echo "chromium --dump-dom: $(echo "$end - $start" | bc) s wall; drawn ${drawn} ms after the page's start; $bars bars"
done

for ((r = 1; r <= reps; r++)); do
  /usr/bin/time -f "run: %e s wall, %U s user, %S s system, %M KB" \
    "$bin" run "$dir/rules" --events "$dir/events.jsonl" --no-progress --output "$dir/run.jsonl" 2>&1 |
    tail -1
  /usr/bin/time -f "backtest: %e s wall, %U s user, %S s system, %M KB" \
    "$bin" backtest "$dir/rules" --events "$dir/events.jsonl" 2>&1 >/dev/null | tail -1
done
