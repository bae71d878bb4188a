#!/usr/bin/env bash
# What an open dashboard costs the server it watches: the CPU of a bench-server with 1,000
# more routes (1,003 in all) and its admin socket, first idle for DURATION seconds, then for
# DURATION seconds while headless Chromium shows the dashboard through `underscore ui` (which
# refreshes every second: _cat/routes of every route, the 50 longest tasks, and the log levels
# every fifth second). CPU is the process's utime + stime from /proc/PID/stat, as a share of
# one core; `underscore ui`'s own CPU (the proxy) is printed too.
#
#   bash bench/ui_cost.sh              # DURATION=60 by default, about 2.5 minutes
#   DURATION=20 bash bench/ui_cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-60}

command -v chromium >/dev/null || { echo "chromium is missing: apt-get install -y chromium" >&2; exit 1; }
# shellcheck source=bench/lib/cpu.sh
source bench/lib/cpu.sh
start_bench_server

"$CLI" --socket "$sock" ui --listen 127.0.0.1:0 >"$dir/ui.out" 2>"$dir/ui.err" &
ui=$!
pids+=("$ui")
url=$(first_line "$dir/ui.out" 'dashboard on ')
sleep 2 # start-up settles before the idle window

t0=$(ticks "$server"); sleep "$DURATION"; t1=$(ticks "$server")

# The flags keep Chromium off the network (there is none here: it would hang).
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$dir/profile" --window-size=1500,1000 "$url" >/dev/null 2>&1 &
pids+=("$!")
sleep 3 # the page loads and takes its first rounds outside the window
t2=$(ticks "$server"); u2=$(ticks "$ui"); sleep "$DURATION"; t3=$(ticks "$server"); u3=$(ticks "$ui")

awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v u="$u2" -v v="$u3" -v hz="$hz" -v s="$DURATION" \
    -v r="$routes" 'BEGIN {
  idle = (b - a) / hz / s * 100
  ui = (d - c) / hz / s * 100
  printf "server with %d routes, %d s windows, CPU as %% of one core (utime+stime, %d ticks/s)\n", r, s, hz
  printf "idle:                               %6.2f%%\n", idle
  printf "dashboard open, refreshing every 1s: %6.2f%%\n", ui
  printf "cost of the dashboard to the server: %6.2f%%\n", ui - idle
  printf "underscore ui (the proxy) itself:    %6.2f%%\n", (v - u) / hz / s * 100
}'
