#!/usr/bin/env bash
# The scale-out table of BENCHMARKS.md ("Scale-out on timely dataflow
# (issue 15)"): `cepheid run` plain, `--workers 1`, `--workers 2` and two
# processes of one worker on loopback, from JSON lines to a file, and
# `examples/dataflow_bench.rs` in memory, on the `ab`, `login` and `many`
# streams of `cepheid-bench --write`, each REPS times. Prints one line per
# run: wall and CPU seconds (user + system, both processes for `p2`, from
# `/usr/bin/time -f`), the load average when it started, and checks that
# the sorted outputs of every layout have the same md5 (exit 1 if not).
#
#   benches/scripts/scale.sh [REPS] [WORKLOADS...]     # default: 3 ab login many
#
# Environment: DIR (streams and outputs, default /tmp/cepheid-scale; the
# outputs of `many` are 1.3 GB each, deleted as soon as they are checked),
# PORT (the first of the two loopback ports, default 7101), NO_BUILD=1 to
# use the binaries already built, BIN (default target/release/cepheid) to
# measure another build of `cepheid`. Run it from the repository's root, on a
# machine as quiet as you can find: two workers that must both advance for
# the frontier to move lose most to a third job on two cores.
set -euo pipefail

reps=${1:-3}
shift || true
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(ab login many)
dir=${DIR:-/tmp/cepheid-scale}
port=${PORT:-7101}
export CARGO_INCREMENTAL=0
mkdir -p "$dir"

if [ -z "${NO_BUILD:-}" ]; then
    cargo build --release --bin cepheid --example dataflow_bench
    cargo build --release -p cepheid-bench
fi
bin=${BIN:-target/release/cepheid}
for w in "${workloads[@]}"; do
    [ -f "$dir/$w.jsonl" ] || target/release/cepheid-bench --write "$dir" "$w" >/dev/null
done

load() { cut -d' ' -f1-3 /proc/loadavg; }

# Sorted md5 of the files given (their lines together), then deletes them.
digest() {
    LC_ALL=C sort -S 1G "$@" | md5sum | cut -c1-8
    rm -f "$@"
}

# One run: LAYOUT WORKLOAD REP; prints its line, records its digest.
run() {
    local layout=$1 w=$2 rep=$3 out="$dir/out-$1-$2.jsonl" times="$dir/time-$1"
    local common=("$dir/$w.cep" --events "$dir/$w.jsonl" --flush-at-end --no-progress)
    local started
    started=$(load)
    case $layout in
        plain) /usr/bin/time -o "$times" -f '%e %U %S' "$bin" run "${common[@]}" --output "$out" 2>/dev/null ;;
        w1) /usr/bin/time -o "$times" -f '%e %U %S' "$bin" run "${common[@]}" --workers 1 --output "$out" 2>/dev/null ;;
        w2) /usr/bin/time -o "$times" -f '%e %U %S' "$bin" run "${common[@]}" --workers 2 --output "$out" 2>/dev/null ;;
        p2)
            printf '127.0.0.1:%d\n127.0.0.1:%d\n' "$port" "$((port + 1))" > "$dir/hosts"
            /usr/bin/time -o "$times.1" -f '%e %U %S' "$bin" run "${common[@]}" \
                --processes 2 --process 1 --hostfile "$dir/hosts" >/dev/null 2>&1 &
            local other=$!
            /usr/bin/time -o "$times" -f '%e %U %S' "$bin" run "${common[@]}" \
                --processes 2 --process 0 --hostfile "$dir/hosts" --output "$out" >/dev/null 2>&1
            wait "$other"
            ;;
    esac
    local wall user sys cpu
    read -r wall user sys < "$times"
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')
    if [ "$layout" = p2 ]; then
        read -r _ user sys < "$times.1"
        cpu=$(awk -v c="$cpu" -v u="$user" -v s="$sys" 'BEGIN { print c + u + s }')
    fi
    local md5
    md5=$(digest "$out")
    printf '%-6s %-5s rep %d: wall %6.2f s  cpu %6.2f s  md5 %s  load %s\n' \
        "$w" "$layout" "$rep" "$wall" "$cpu" "$md5" "$started"
    echo "$md5" >> "$dir/digests-$w"
}

status=0
for w in "${workloads[@]}"; do
    rm -f "$dir/digests-$w"
    for rep in $(seq 1 "$reps"); do
        for layout in plain w1 w2 p2; do
            run "$layout" "$w" "$rep"
        done
        echo "$w    memory rep $rep (load $(load)):"
        target/release/examples/dataflow_bench "$dir/$w.cep" "$dir/$w.jsonl" 1 2 \
            | tee "$dir/memory" | sed 's/^/    /'
        # The engine and every worker count: the same matches and timeouts.
        if [ "$(sed 's/.*; //' "$dir/memory" | sort -u | wc -l)" -ne 1 ]; then
            echo "$w: in memory, the counts differ between worker counts"
            status=1
        fi
    done
    if [ "$(sort -u "$dir/digests-$w" | wc -l)" -ne 1 ]; then
        echo "$w: the sorted outputs differ between layouts: $(sort -u "$dir/digests-$w" | tr '\n' ' ')"
        status=1
    fi
done
exit $status
