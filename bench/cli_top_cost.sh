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

# shellcheck source=bench/lib/cpu.sh
source bench/lib/cpu.sh
start_bench_server

# Let start-up settle before the idle window.
sleep 2

t0=$(ticks "$server"); sleep "$DURATION"; t1=$(ticks "$server")

# One more frame than seconds, so top polls through the whole window.
"$CLI" --socket "$sock" top --frames $((DURATION * 4 + 10)) --interval "$INTERVAL" --size 120x40 >/dev/null &
pids+=("$!")
sleep 1 # its first poll (h=*, which learns the columns) is outside the window
t2=$(ticks "$server"); sleep "$DURATION"; t3=$(ticks "$server")

awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v hz="$hz" -v s="$DURATION" \
    -v r="$routes" -v i="$INTERVAL" 'BEGIN {
  idle = (b - a) / hz / s * 100
  top = (d - c) / hz / s * 100
  printf "server with %d routes, %d s windows, CPU as %% of one core (utime+stime, %d ticks/s)\n", r, s, hz
  printf "idle:                          %6.2f%%\n", idle
  printf "underscore top, every %-8s %6.2f%%\n", i ":", top
  printf "cost of top:                   %6.2f%%\n", top - idle
}'
