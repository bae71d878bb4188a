#!/usr/bin/env bash
# What `underscore top` costs the server it watches: the CPU of a bench-server with 1,000 more
# routes (1,002 in all) and its admin socket, first idle for DURATION seconds, then for
# DURATION seconds while `underscore top --interval 1s` polls it (in its --frames mode, which
# sends the very requests the interactive view sends, every interval). CPU is the server
# process's utime + stime from /proc/PID/stat, as a share of one core.
#
#   bash bench/cli_top_cost.sh              # DURATION=60 by default, about 2 minutes
#   DURATION=20 INTERVAL=500ms bash bench/cli_top_cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-60}
INTERVAL=${INTERVAL:-1s}

cargo build --release --quiet -p underscore-bench --bin bench-server
cargo build --release --quiet -p underscore-cli
SERVER=target/release/bench-server
CLI=target/release/underscore

dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

BENCH_ROUTES=1000 "$SERVER" underscore 127.0.0.1:0 >"$dir/server.out" 2>"$dir/server.err" &
server=$!
pids+=("$server")
for _ in $(seq 100); do
  grep -q '^admin socket ' "$dir/server.out" 2>/dev/null && break
  sleep 0.1
done
sock=$(sed -n 's/^admin socket //p' "$dir/server.out")
[ -S "$sock" ] || { echo "the bench server did not start" >&2; cat "$dir/server.err" >&2; exit 1; }
routes=$(curl -s --unix-socket "$sock" 'http://./_cat/routes?h=id' | wc -l)

hz=$(getconf CLK_TCK)
ticks() { awk '{ print $14 + $15 }' "/proc/$server/stat"; }
# Let start-up settle before the idle window.
sleep 2

t0=$(ticks); sleep "$DURATION"; t1=$(ticks)

# One more frame than seconds, so top polls through the whole window.
"$CLI" --socket "$sock" top --frames $((DURATION * 4 + 10)) --interval "$INTERVAL" --size 120x40 >/dev/null &
pids+=("$!")
sleep 1 # its first poll (h=*, which learns the columns) is outside the window
t2=$(ticks); sleep "$DURATION"; t3=$(ticks)

awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v hz="$hz" -v s="$DURATION" \
    -v r="$routes" -v i="$INTERVAL" 'BEGIN {
  idle = (b - a) / hz / s * 100
  top = (d - c) / hz / s * 100
  printf "server with %d routes, %d s windows, CPU as %% of one core (utime+stime, %d ticks/s)\n", r, s, hz
  printf "idle:                          %6.2f%%\n", idle
  printf "underscore top, every %-8s %6.2f%%\n", i ":", top
  printf "cost of top:                   %6.2f%%\n", top - idle
}'
